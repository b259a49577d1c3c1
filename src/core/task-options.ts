/**
 * Task options: their schema (parsed strictly, Celery's defaults) and the input type of
 * `defineTask`. Re-exported by `task.ts`.
 */
import * as z from 'zod/mini';
import { $ZodObject, $ZodType } from 'zod/v4/core';
import { DEFAULT_MAX_BODY_BYTES } from './json.js';
import type { Backoff, ErrorMatcher } from './retry-policy.js';
import { parseSchedule } from './schedule.js';

/** Celery's default `max_retries`. */
export const DEFAULT_MAX_RETRIES = 3;
/** Celery's default `default_retry_delay`, in seconds. */
export const DEFAULT_RETRY_DELAY_SECONDS = 180;
/** Celery's default queue name. */
export const DEFAULT_QUEUE = 'celery';

/**
 * A zod object schema for kwargs: `z.object()` of `zod` or of `zod/mini` (the smaller bundle),
 * or any other zod 4 object schema.
 */
export type KwargsSchema = z.core.$ZodObject;
/** A zod schema for positional args, of either zod API. */
export type ArgsSchema = z.core.$ZodType<readonly unknown[]>;

const errorMatcherSchema = z.union([
  z.string().check(z.minLength(1)),
  z.custom<ErrorMatcher>((value) => typeof value === 'function', 'expected an error class'),
]);
const errorMatchersSchema = z._default(z.array(errorMatcherSchema), []);
const positive = () => z.number().check(z.positive());
const positiveInt = () => z.int().check(z.positive());

const backoffSchema = z.pipe(
  z._default(
    z.union([
      z.boolean(),
      positive(),
      z.strictObject({
        factor: z._default(positive(), 1),
        max: z._default(positive(), 600),
        jitter: z._default(z.boolean(), true),
      }),
    ]),
    false,
  ),
  z.transform((value): Backoff | null => {
    if (value === false) return null;
    if (value === true) return { factor: 1, max: 600, jitter: true };
    if (typeof value === 'number') return { factor: value, max: 600, jitter: true };
    return value;
  }),
);

/**
 * Task options, parsed strictly: an unknown key (a typo) is an error naming it.
 * Defaults are Celery's.
 */
export const taskOptionsSchema = z
  .strictObject({
    name: z
      .string()
      .check(
        z.minLength(1),
        z.regex(
          /^[A-Za-z_][\w.:-]*$/,
          'letters, digits, _ . : - only, starting with a letter or _',
        ),
      ),
    queue: z._default(z.string().check(z.minLength(1)), DEFAULT_QUEUE),
    maxRetries: z._default(z.nullable(z.int().check(z.nonnegative())), DEFAULT_MAX_RETRIES),
    defaultRetryDelay: z._default(z.number().check(z.nonnegative()), DEFAULT_RETRY_DELAY_SECONDS),
    retry: z._default(
      z.strictObject({
        on: errorMatchersSchema,
        exclude: errorMatchersSchema,
        ignore: errorMatchersSchema,
      }),
      { on: [], exclude: [], ignore: [] },
    ),
    backoff: backoffSchema,
    // Both zod APIs build on zod 4's core classes, whose `instanceof` checks the schema's traits.
    kwargs: z.optional(
      z.custom<KwargsSchema>(
        (value) => value instanceof $ZodObject,
        'expected a z.object() schema',
      ),
    ),
    args: z.optional(
      z.custom<ArgsSchema>((value) => value instanceof $ZodType, 'expected a zod schema'),
    ),
    expires: z.optional(positive()),
    timeLimit: z.optional(positive()),
    softTimeLimit: z.optional(positive()),
    priority: z.optional(z.int().check(z.minimum(0), z.maximum(255))),
    cron: z.optional(z.string()),
    aliases: z._default(z.array(z.string().check(z.minLength(1))), []),
    maxArgumentBytes: z._default(positiveInt(), DEFAULT_MAX_BODY_BYTES),
    atMostOnce: z._default(z.boolean(), false),
    idempotent: z._default(z.boolean(), false),
    onceTtl: z._default(positiveInt(), 86_400),
    ignoreResult: z._default(z.boolean(), false),
    // No default here: unset means the result backend's `trackStarted` (Celery's app default).
    trackStarted: z.optional(z.boolean()),
  })
  .check(
    z.superRefine((options, context) => {
      if (
        options.timeLimit !== undefined &&
        options.softTimeLimit !== undefined &&
        options.softTimeLimit > options.timeLimit
      ) {
        context.addIssue({
          code: 'custom',
          path: ['softTimeLimit'],
          message: 'must not exceed timeLimit',
        });
      }
      if (options.cron !== undefined) {
        const parsed = parseSchedule(options.cron);
        if (!parsed.ok)
          context.addIssue({ code: 'custom', path: ['cron'], message: parsed.reason });
      }
    }),
  );

/** Task options after defaults: what the rest of the system reads. */
export type TaskOptions = z.output<typeof taskOptionsSchema>;

/** What `defineTask` accepts. */
export interface TaskOptionsInput<K extends KwargsSchema, A extends ArgsSchema> {
  /** Stable task name, the one on the wire (e.g. `ingest.save_event`). Required. */
  readonly name: string;
  /** Queue it is published to. @defaultValue `celery` */
  readonly queue?: string;
  /** Retries allowed; `null` for unlimited. @defaultValue 3 */
  readonly maxRetries?: number | null;
  /** Seconds before a retry when no backoff or countdown says otherwise. @defaultValue 180 */
  readonly defaultRetryDelay?: number;
  /** Sentry's retry lists; see {@link decideRetry} for their precedence. */
  readonly retry?: {
    readonly on?: readonly ErrorMatcher[];
    readonly exclude?: readonly ErrorMatcher[];
    readonly ignore?: readonly ErrorMatcher[];
  };
  /** Exponential backoff for `retry.on` errors: `true` (factor 1 s), a factor, or full options. */
  readonly backoff?: boolean | number | Partial<Backoff>;
  /** Schema of the kwargs; unknown keys are kept, not rejected. */
  readonly kwargs?: K;
  /** Schema of the positional args. */
  readonly args?: A;
  /** Default seconds until a published message expires. */
  readonly expires?: number;
  /**
   * Hard time limit in seconds: the run ends with `TimeLimitExceeded`. A message's own
   * `timelimit` wins over it, as in Celery (`apply_async(time_limit=…)`).
   */
  readonly timeLimit?: number;
  /**
   * Soft time limit in seconds: the task's abort signal fires with `SoftTimeLimitExceeded`. A
   * message's own `timelimit` wins over it, as in Celery.
   */
  readonly softTimeLimit?: number;
  /** Default message priority. */
  readonly priority?: number;
  /** 5-field cron expression or `rate(N minutes)`: publish this task on that schedule. */
  readonly cron?: string;
  /** Other names this task answers to (old names during a rename). */
  readonly aliases?: readonly string[];
  /** Limit on the encoded body, in bytes. @defaultValue 65536 */
  readonly maxArgumentBytes?: number;
  /**
   * Sentry's `at_most_once`: each attempt (id + retries) is recorded before it runs and a repeat
   * is skipped, so a redelivered message never runs twice, at the price of never running again
   * if the first run died midway. Needs a once store (Redis). @defaultValue false
   */
  readonly atMostOnce?: boolean;
  /**
   * The task id is recorded after a successful run and a later delivery of the same id is
   * skipped: for tasks that must not run twice once they succeeded (a crash between success and
   * record can still repeat one). Needs a once store. @defaultValue false
   */
  readonly idempotent?: boolean;
  /** Seconds the records of `atMostOnce` / `idempotent` are kept. @defaultValue 86400 */
  readonly onceTtl?: number;
  /**
   * Store no result for this task (Celery's `ignore_result`); a call may still ask otherwise.
   * @defaultValue false
   */
  readonly ignoreResult?: boolean;
  /**
   * Store a `STARTED` state in the result backend when a run begins (Celery's `track_started`),
   * before it runs; not for a task whose result is not stored.
   * @defaultValue the result backend's `trackStarted` (Celery's `task_track_started`), false
   */
  readonly trackStarted?: boolean;
}
