/**
 * Task declarations: `defineTask(options, handler)`, Sentry's way of declaring Celery tasks in
 * TypeScript. A task has an explicit, stable name (never derived from a file path), a queue, a
 * retry policy and a zod schema for its kwargs that tolerates unknown keys, so that during a
 * rolling deploy messages from old and new producers both run.
 */

import * as z from 'zod/mini';
import {
  InvalidArgumentsError,
  InvalidConfigError,
  type RetryRequest,
  RetrySignal,
} from './errors.js';
import type { JsonObject, JsonValue } from './json.js';
import type { TaskCall, TaskMessage } from './message.js';
import type { RetryPolicy } from './retry-policy.js';
import { parseSchedule, type Schedule } from './schedule.js';
import type { SignatureDict, SignatureOptions } from './signature.js';
import { buildCallMessage, taskSignature } from './task-call.js';
import {
  type ArgsSchema,
  type KwargsSchema,
  type TaskOptions,
  type TaskOptionsInput,
  taskOptionsSchema,
} from './task-options.js';
import { safeParse, toFieldIssues } from './zod-issues.js';

export {
  type ArgsSchema,
  DEFAULT_MAX_RETRIES,
  DEFAULT_QUEUE,
  DEFAULT_RETRY_DELAY_SECONDS,
  type KwargsSchema,
  type TaskOptions,
  type TaskOptionsInput,
  taskOptionsSchema,
} from './task-options.js';

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
  /**
   * Signatures sent with this task's result as first argument when it succeeds (Celery's
   * `link`; immutable ones keep their own args). Carried in the message's `embed.callbacks`.
   */
  readonly link?: SignatureDict | readonly SignatureDict[];
  /**
   * Signatures sent with this task's id as first argument when it fails for good (Celery's
   * `link_error`). Carried in `embed.errbacks`.
   */
  readonly linkError?: SignatureDict | readonly SignatureDict[];
  /** Ask workers to store no result for this call. @defaultValue the task's `ignoreResult` */
  readonly ignoreResult?: boolean;
}

/**
 * Arguments and options of a signature of a declared task (`task.s()`, `task.si()`). For
 * `s()`, args and kwargs are partial: the parent's result is prepended when it is applied.
 */
export interface TaskSignatureInput<Kwargs = JsonObject, Args = readonly JsonValue[]>
  extends SignatureOptions {
  readonly args?: Args;
  readonly kwargs?: Kwargs;
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
  /**
   * A signature of this task (Celery's `task.s()`), to link, chain, group or chord. Its args
   * are partial (the parent's result goes first when it runs), so only plain JSON is checked
   * here; the schemas are checked when it runs. It names the task's queue.
   *
   * @throws InvalidArgumentsError for arguments that are not plain JSON, or bad options
   * @example
   * const flow = chain(fetch.s({ args: [url] }), parse.s(), store.s());
   */
  s(call?: TaskSignatureInput): SignatureDict;
  /**
   * An immutable signature of this task (Celery's `task.si()`): it ignores the parent's result,
   * so its arguments are complete and checked against the task's schemas now.
   *
   * @throws InvalidArgumentsError naming every bad field
   */
  si(
    call?: TaskSignatureInput<z.input<K> & JsonObject, z.input<A> & readonly JsonValue[]>,
  ): SignatureDict;
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
    const checked = parseArguments(call.args ?? [], call.kwargs ?? {});
    return buildCallMessage(resolved, call, checked.ok ? [] : checked.error.issues, now);
  };
  const s: Task<K, A, R>['s'] = (call = {}) => taskSignature(resolved, call, false, []);
  const si: Task<K, A, R>['si'] = (call = {}) => {
    const checked = parseArguments(call.args ?? [], call.kwargs ?? {});
    return taskSignature(resolved, call, true, checked.ok ? [] : checked.error.issues);
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
    s,
    si,
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

function parseScheduleOrThrow(text: string): Schedule {
  const parsed = parseSchedule(text);
  // The options schema already refused invalid schedules; this only narrows the type.
  if (!parsed.ok) throw new InvalidConfigError('cron', [{ path: 'cron', message: parsed.reason }]);
  return parsed.schedule;
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
