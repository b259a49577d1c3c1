/**
 * The per-task Lambda function: receives a batch of messages of its task from the dispatcher,
 * runs each (expired → dead letter, eta ahead → not due, schema, time limits, retry decision) with
 * a deadline tied to the Lambda's remaining time, and returns one outcome per message. One
 * message's failure never fails its neighbours; settling is the dispatcher's job, and so is
 * continuing a workflow: the function has no broker, so an outcome carries the task's result
 * when a `link` or `chain` continues from it (held to `maxArgumentBytes`, so a batch's answer
 * stays under Lambda's 6 MB).
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { celeryEventsFromEnv } from '../config/events-config.js';
import { deadLetterForDecodeFailure, deadLetterReason } from '../core/dead-letter.js';
import { InvalidConfigError } from '../core/errors.js';
import type { OnceStore } from '../core/once-store.js';
import type { Registry } from '../core/registry.js';
import { runMessage } from '../core/run-task.js';
import { type TaskOutcome, toTaskOutcome } from '../core/task-outcome.js';
import { type DecodeResult, decodeDelivery, type RawDelivery } from '../core/wire.js';
import { type AttemptRecord, attemptRecord } from '../worker/attempt-log.js';
import { createLogger, logAttempt } from './logging.js';
import { metricsInLambda, publishAttemptMetrics, type TaskMetricsSink } from './metrics.js';

/** What the dispatcher sends a task function. */
export interface TaskInvocation {
  readonly messages: readonly RawDelivery[];
}

/** What a task function answers: one outcome per message, in order. */
export interface TaskInvocationResult {
  readonly outcomes: readonly TaskOutcome[];
}

/** Options of {@link createTaskHandler}. */
export interface TaskHandlerOptions {
  /**
   * Milliseconds kept in hand before the Lambda timeout: a run still going this long before it
   * ends with `TimeLimitExceeded` (its abort signal fires), so outcomes still reach the
   * dispatcher. @defaultValue 1000
   */
  readonly safetyMarginMs?: number;
  /**
   * Where an `atMostOnce` / `idempotent` task records its runs; required for such a task, e.g.
   * `redisOnceStore()` (Redis at `ONCE_STORE_URL`, else the broker's). Given explicitly, like
   * Powertools' idempotency store, so that the functions of the other tasks carry no Redis client.
   */
  readonly store?: OnceStore;
  /**
   * A result backend is configured: every result is returned to the dispatcher (to be stored),
   * and chord parts are admitted. Results a `link` or `chain` continues from are returned
   * anyway. @defaultValue true when `RESULT_BACKEND` is set (the plugin sets it on every function
   * when `custom.celery.resultBackend` is), else false
   */
  readonly results?: boolean;
  /**
   * Where the line per attempt goes (`null`: nowhere). Under serverless-offline (`IS_OFFLINE`)
   * the dispatcher prints each attempt's line, so the function writes none.
   * @defaultValue a Powertools Logger ({@link createLogger}), or `null` under serverless-offline
   */
  readonly logger?: Logger | null;
  /**
   * Where task metrics go, as CloudWatch EMF (`null`: nowhere).
   * @defaultValue Powertools Metrics in Lambda ({@link metricsInLambda}), else `null`
   */
  readonly metrics?: TaskMetricsSink | null;
}

/**
 * Builds the handler of the function that runs `task` (its messages only: a message of another
 * task is dead-lettered as misrouted rather than run by the wrong function).
 *
 * @example
 * // functions/task-ingest-save_event.ts
 * export const handler = createTaskHandler(registry, 'ingest.save_event');
 */
export function createTaskHandler(
  registry: Registry,
  task: string,
  options: TaskHandlerOptions = {},
) {
  const lookup = registry.lookup(task);
  if (lookup.kind === 'unregistered') throw lookup.error;
  const margin = options.safetyMarginMs ?? 1000;
  const names = new Set([lookup.task.name, ...lookup.task.options.aliases]);
  const { atMostOnce, idempotent } = lookup.task.options;
  const store = options.store;
  // Only whether it is set matters here: the function stores nothing, its dispatcher does.
  const results = options.results ?? Boolean(process.env.RESULT_BACKEND?.trim());
  // With Celery events on, the dispatcher's task-succeeded shows the result: return it too.
  const keepResults = results || celeryEventsFromEnv();
  const offline = process.env.IS_OFFLINE === 'true';
  const logger = options.logger !== undefined ? options.logger : offline ? null : createLogger();
  const metrics = options.metrics !== undefined ? options.metrics : metricsInLambda();
  if ((atMostOnce || idempotent) && !store) {
    const flag = atMostOnce ? 'atMostOnce' : 'idempotent';
    throw new InvalidConfigError(`task ${task}`, [
      {
        path: 'store',
        message: `an ${flag} task needs a once store: createTaskHandler(registry, '${task}', { store: redisOnceStore() })`,
      },
    ]);
  }

  const runAll = async (
    event: TaskInvocation,
    remainingTimeMs: () => number,
    signal: AbortSignal,
  ): Promise<TaskOutcome[]> => {
    const records: AttemptRecord[] = [];
    const outcomes = await Promise.all(
      (event.messages ?? []).map(async (raw): Promise<TaskOutcome> => {
        const decoded = decodeDelivery(raw);
        const outcome = await runOne(decoded, remainingTimeMs, signal);
        // The queue is the routing key: Celery's default exchange routes by queue name.
        const input = { queue: raw.routingKey, delivery: { result: decoded }, outcome };
        const settledAt = new Date();
        records.push(
          logger ? logAttempt(logger, input, settledAt) : attemptRecord(input, settledAt),
        );
        return outcome;
      }),
    );
    if (metrics) publishAttemptMetrics(metrics, records);
    return outcomes;
  };

  const runOne = async (
    decoded: DecodeResult,
    remainingTimeMs: () => number,
    signal: AbortSignal,
  ): Promise<TaskOutcome> => {
    if (!decoded.ok) {
      return { kind: 'dead', reason: deadLetterForDecodeFailure(decoded), durationMs: 0 };
    }
    const message = decoded.message;
    if (!names.has(message.task)) {
      const detail = `message for task ${message.task} reached the function of ${task}`;
      return {
        kind: 'dead',
        reason: deadLetterReason(message, 'unknownTask', detail),
        durationMs: 0,
      };
    }
    return toTaskOutcome(
      await runMessage(registry, message, {
        remainingTimeMs,
        signal,
        keepResults,
        results,
        ...(store ? { store } : {}),
      }),
    );
  };

  const runBatch = async (
    event: TaskInvocation,
    context: Context,
    { signal }: { signal: AbortSignal },
  ): Promise<TaskInvocationResult> => {
    const remainingTimeMs = () => context.getRemainingTimeInMillis() - margin;
    metrics?.captureColdStartMetric?.(context.functionName);
    // middy hands every invocation of a warm container the same AbortSignal until it fires, and a
    // run listens to its signal until it aborts: give each invocation a signal of its own, unlinked
    // when the batch is answered, so listeners do not pile up on middy's across invocations.
    const invocation = new AbortController();
    setMaxListeners(0, invocation.signal);
    const forward = () => invocation.abort(signal.reason);
    if (signal.aborted) forward();
    else signal.addEventListener('abort', forward, { once: true });
    try {
      return { outcomes: await runAll(event, remainingTimeMs, invocation.signal) };
    } finally {
      signal.removeEventListener('abort', forward);
    }
  };

  const handler = middy(runBatch, { timeoutEarlyInMillis: Math.max(5, margin / 2) });
  // Adds cold_start, function_request_id and the X-Ray trace id to every line of the invocation.
  return logger ? handler.use(injectLambdaContext(logger, { resetKeys: true })) : handler;
}
