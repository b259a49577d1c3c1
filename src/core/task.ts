/**
 * Task declarations: `defineTask(options, handler)`, Sentry's way of declaring Celery tasks in
 * TypeScript. A task has an explicit, stable name (never derived from a file path), a queue, a
 * retry policy and a zod schema for its kwargs that tolerates unknown keys, so that during a
 * rolling deploy messages from old and new producers both run.
 */

import * as z from 'zod/mini';
import { $ZodObject, $ZodType } from 'zod/v4/core';
import {
  InvalidArgumentsError,
  InvalidConfigError,
  PayloadTooLargeError,
  type RetryRequest,
  RetrySignal,
} from './errors.js';
import { DEFAULT_MAX_BODY_BYTES, findJsonIssues, type JsonObject, type JsonValue } from './json.js';
import { createTaskMessage, EMPTY_EMBED, type TaskCall, type TaskMessage } from './message.js';
import type { Backoff, ErrorMatcher, RetryPolicy } from './retry-policy.js';
import { parseSchedule, type Schedule } from './schedule.js';
import { safeParse, toFieldIssues } from './zod-issues.js';

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
}

/** Kwargs as the handler sees them: the schema's output plus any unknown keys, kept. */
export type TaskKwargs<K extends KwargsSchema> = z.output<K> & Record<string, unknown>;

/** What a handler gets besides its kwargs. */
export interface TaskContext<Args = readonly JsonValue[]> {
  /** Task id, stable across retries. */
  readonly id: string;
  /** Task name as published (may be an alias). */
  readonly task: string;
  /** Positional arguments. */
  readonly args: Args;
  /** Retries so far: 0 on the first run. */
  readonly retries: number;
  /** When this run was scheduled for, if it was delayed. */
  readonly eta: Date | null;
  /** When this task expires, if ever. */
  readonly expires: Date | null;
  /** First task of the workflow. */
  readonly rootId: string | null;
  /** Task that published this one. */
  readonly parentId: string | null;
  /** The message being run. */
  readonly message: TaskMessage;
  /**
   * Aborted when the run must stop: with `SoftTimeLimitExceeded` at the soft time limit, with
   * `TimeLimitExceeded` at the hard one (or when the Lambda is about to time out).
   */
  readonly signal: AbortSignal;
  /** Milliseconds left before the run is cut off (hard time limit or the Lambda's time left). */
  remainingTimeMs(): number;
  /**
   * Asks for this task to run again later (Celery's `self.retry`). Always throws: write
   * `throw ctx.retry(...)` or `return ctx.retry(...)` for readability.
   */
  retry(request?: RetryRequest): never;
}

/** The function that does a task's work. */
export type TaskHandler<Kwargs, Args, Result> = (
  kwargs: Kwargs,
  ctx: TaskContext<Args>,
) => Result | Promise<Result>;

/** How a call may override a task's publishing defaults. */
export interface TaskCallOptions
  extends Pick<
    TaskCall,
    'id' | 'countdown' | 'eta' | 'expires' | 'priority' | 'parentId' | 'rootId'
  > {
  /** Queue, when not the task's own. */
  readonly queue?: string;
}

/** A call of a task: its arguments plus publishing options. */
export interface TaskCallInput<K extends KwargsSchema, A extends ArgsSchema>
  extends TaskCallOptions {
  readonly kwargs?: z.input<K> & JsonObject;
  readonly args?: z.input<A> & readonly JsonValue[];
}

/** Arguments of a message checked against the task's schemas. */
export type ParsedArguments<K extends KwargsSchema, A extends ArgsSchema> =
  | { readonly ok: true; readonly kwargs: TaskKwargs<K>; readonly args: z.output<A> }
  | { readonly ok: false; readonly error: InvalidArgumentsError };

const TASK_MARK: unique symbol = Symbol.for('serverless-celery.task');

/** A declared task. Create with {@link defineTask}. */
export interface Task<
  K extends KwargsSchema = KwargsSchema,
  A extends ArgsSchema = ArgsSchema,
  R = unknown,
> {
  readonly [TASK_MARK]: true;
  /** The task name. */
  readonly name: string;
  /** Options after defaults. */
  readonly options: TaskOptions;
  /** The retry decision's input. */
  readonly retryPolicy: RetryPolicy;
  /** Parsed `cron`, or `null`. */
  readonly schedule: Schedule | null;
  /** The work. */
  readonly handler: TaskHandler<TaskKwargs<K>, z.output<A>, R>;
  /**
   * Checks a message's arguments against the schemas (unknown kwargs kept).
   * Never throws; an invalid result names every failing field.
   */
  parseArguments(args: readonly unknown[], kwargs: Record<string, unknown>): ParsedArguments<K, A>;
  /**
   * Builds the Celery message for a call, validated as at publish time: schemas, plain JSON
   * only, encoded size under the limit.
   *
   * @throws InvalidArgumentsError naming every bad field
   * @throws PayloadTooLargeError when the encoded body is over `maxArgumentBytes`
   */
  createMessage(call?: TaskCallInput<K, A>, now?: Date): TaskMessage;
}

/** True for values made by {@link defineTask}. */
export function isTask(value: unknown): value is Task {
  return typeof value === 'object' && value !== null && TASK_MARK in value;
}

/**
 * Declares a task.
 *
 * @param options - name, queue, retry policy, schemas; see {@link TaskOptionsInput}
 * @param handler - the work, called with the parsed kwargs and a {@link TaskContext}
 * @throws InvalidConfigError listing every bad option (unknown keys included)
 * @example
 * export const saveEvent = defineTask(
 *   {
 *     name: 'ingest.save_event',
 *     queue: 'events',
 *     kwargs: z.object({ event_id: z.string() }),
 *     retry: { on: [StoreUnavailableError], exclude: [TypeError], ignore: [EventGoneError] },
 *     backoff: true,
 *   },
 *   async ({ event_id }, ctx) => store.save(event_id),
 * );
 */
export function defineTask<
  K extends KwargsSchema = z.ZodMiniObject<Record<never, never>, z.core.$loose>,
  A extends ArgsSchema = z.core.$ZodType<readonly JsonValue[]>,
  R = unknown,
>(
  options: TaskOptionsInput<K, A>,
  handler: TaskHandler<TaskKwargs<K>, z.output<A>, R>,
): Task<K, A, R> {
  const parsed = safeParse(taskOptionsSchema, options);
  const label = typeof options?.name === 'string' ? `task ${options.name}` : 'task';
  if (!parsed.success) throw new InvalidConfigError(label, toFieldIssues(parsed.error));
  if (typeof handler !== 'function') {
    throw new InvalidConfigError(label, [{ path: 'handler', message: 'must be a function' }]);
  }
  const resolved = parsed.data;
  // Unknown keys are kept, not rejected: during a rolling deploy a newer producer may send
  // kwargs this version does not know yet.
  const kwargsSchema = looseObject(resolved.kwargs ?? z.object({}));
  const argsSchema = resolved.args;
  const schedule = resolved.cron === undefined ? null : parseScheduleOrThrow(resolved.cron);
  const retryPolicy: RetryPolicy = {
    maxRetries: resolved.maxRetries,
    defaultRetryDelay: resolved.defaultRetryDelay,
    on: resolved.retry.on,
    exclude: resolved.retry.exclude,
    ignore: resolved.retry.ignore,
    backoff: resolved.backoff,
  };

  const parseArguments = (
    args: readonly unknown[],
    kwargs: Record<string, unknown>,
  ): ParsedArguments<K, A> => {
    const issues = [];
    const kwargsResult = safeParse(kwargsSchema, kwargs);
    if (!kwargsResult.success) issues.push(...toFieldIssues(kwargsResult.error, 'kwargs'));
    const argsResult = argsSchema && safeParse(argsSchema, args);
    if (argsResult && !argsResult.success) issues.push(...toFieldIssues(argsResult.error, 'args'));
    if (issues.length > 0 || !kwargsResult.success) {
      return { ok: false, error: new InvalidArgumentsError(resolved.name, issues) };
    }
    return {
      ok: true,
      kwargs: kwargsResult.data as TaskKwargs<K>,
      args: (argsResult?.success ? argsResult.data : args) as z.output<A>,
    };
  };

  const createMessage = (call: TaskCallInput<K, A> = {}, now = new Date()): TaskMessage => {
    const args: readonly unknown[] = call.args ?? [];
    const kwargs: Record<string, unknown> = call.kwargs ?? {};
    const checked = parseArguments(args, kwargs);
    const issues = [
      ...findJsonIssues(args, 'args'),
      ...findJsonIssues(kwargs, 'kwargs'),
      ...findCallIssues(call),
      ...(checked.ok ? [] : checked.error.issues),
    ];
    if (issues.length > 0) throw new InvalidArgumentsError(resolved.name, issues);
    const body = JSON.stringify([args, kwargs, EMPTY_EMBED]);
    const bytes = Buffer.byteLength(body, 'utf8');
    if (bytes > resolved.maxArgumentBytes) {
      throw new PayloadTooLargeError(resolved.name, bytes, resolved.maxArgumentBytes);
    }
    const message = createTaskMessage(
      {
        task: resolved.name,
        queue: call.queue ?? resolved.queue,
        args: args as readonly JsonValue[],
        kwargs: kwargs as JsonObject,
        ...(call.id === undefined ? {} : { id: call.id }),
        ...(call.countdown === undefined ? {} : { countdown: call.countdown }),
        ...(call.eta === undefined ? {} : { eta: call.eta }),
        ...pickExpires(call.expires ?? resolved.expires),
        priority: call.priority ?? resolved.priority ?? 0,
        timeLimit: [resolved.timeLimit ?? null, resolved.softTimeLimit ?? null],
        parentId: call.parentId ?? null,
        rootId: call.rootId ?? null,
      },
      now,
    );
    // The body was serialised once to measure it; the codec re-uses that text.
    return { ...message, rawBody: body };
  };

  return Object.freeze({
    [TASK_MARK]: true as const,
    name: resolved.name,
    options: resolved,
    retryPolicy,
    schedule,
    handler,
    parseArguments,
    createMessage,
  });
}

/**
 * `schema` with unknown keys kept, whichever zod API made it: classic's `.loose()` and mini's
 * `z.catchall(schema, z.unknown())` are the same clone with an `unknown` catch-all (both APIs'
 * objects have the `clone` that `z.catchall` calls).
 */
function looseObject(schema: KwargsSchema): KwargsSchema {
  return z.catchall(schema as z.ZodMiniObject, z.unknown());
}

function pickExpires(expires: number | Date | undefined): { expires?: number | Date } {
  return expires === undefined ? {} : { expires };
}

function parseScheduleOrThrow(text: string): Schedule {
  const parsed = parseSchedule(text);
  // The options schema already refused invalid schedules; this only narrows the type.
  if (!parsed.ok) throw new InvalidConfigError('cron', [{ path: 'cron', message: parsed.reason }]);
  return parsed.schedule;
}

function findCallIssues(call: TaskCallOptions): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const finite = (value: unknown) => typeof value === 'number' && Number.isFinite(value);
  if (call.countdown !== undefined && !finite(call.countdown)) {
    issues.push({ path: 'countdown', message: 'must be a finite number of seconds' });
  }
  if (call.eta !== undefined && !(call.eta instanceof Date && finite(call.eta.getTime()))) {
    issues.push({ path: 'eta', message: 'must be a valid Date' });
  }
  const expires = call.expires;
  if (
    expires !== undefined &&
    !(expires instanceof Date ? finite(expires.getTime()) : finite(expires))
  ) {
    issues.push({ path: 'expires', message: 'must be seconds or a valid Date' });
  }
  if (
    call.priority !== undefined &&
    !(Number.isInteger(call.priority) && call.priority >= 0 && call.priority <= 255)
  ) {
    issues.push({ path: 'priority', message: 'must be an integer from 0 to 255' });
  }
  if (call.id !== undefined && (typeof call.id !== 'string' || call.id === '')) {
    issues.push({ path: 'id', message: 'must be a non-empty string' });
  }
  return issues;
}

/**
 * Builds the {@link TaskContext} for one run of `message`.
 *
 * @param message - the message being run
 * @param args - positional args after parsing
 * @param run - the run's abort signal and deadline
 */
export function createTaskContext<Args>(
  message: TaskMessage,
  args: Args,
  run: { signal: AbortSignal; remainingTimeMs: () => number },
): TaskContext<Args> {
  return {
    id: message.id,
    task: message.task,
    args,
    retries: message.retries,
    eta: message.eta,
    expires: message.expires,
    rootId: message.rootId,
    parentId: message.parentId,
    message,
    signal: run.signal,
    remainingTimeMs: run.remainingTimeMs,
    retry(request?: RetryRequest): never {
      throw new RetrySignal(request);
    },
  };
}
