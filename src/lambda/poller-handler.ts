/**
 * The Redis poller as a scheduled Lambda ("drain"): Redis has no Lambda event source, so this
 * function pulls batches itself and invokes each task's function, like the long-lived
 * `serverless-celery worker --invoke lambda`, through the same code path. It stops taking
 * messages shortly before its own timeout and settles what it holds before returning.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { runWorker } from '../worker/local-worker.js';
import { deployedFunctionName } from './function-names.js';
import { type LambdaExecutorOptions, lambdaExecutor } from './lambda-executor.js';
import type { LambdaRuntime } from './runtime.js';

/** Options of {@link createPollerHandler}. */
export interface PollerOptions {
  /** Queues to drain. @defaultValue every declared queue */
  readonly queues?: readonly string[];
  /**
   * Stop taking messages when less than this is left before the poller's timeout. Must exceed
   * the task functions' timeout, so every invoke returns before the poller is stopped.
   * @defaultValue 60000
   */
  readonly stopTakingAtMs?: number;
  /**
   * Invokes of task functions in flight at once. A throttled invoke narrows this for a while
   * (see the worker), so a low account concurrency slows the poller down instead of failing
   * messages. @defaultValue 100
   */
  readonly maxInFlight?: number;
  /** Most messages per invoke (all of one task). @defaultValue 10 */
  readonly invokeBatchSize?: number;
  /** Lambda client, for tests. */
  readonly client?: LambdaExecutorOptions['client'];
}

/** Builds the scheduled drain handler. */
export function createPollerHandler(runtime: LambdaRuntime, options: PollerOptions = {}) {
  const stopAt = options.stopTakingAtMs ?? 60_000;
  return middy(async (_event: unknown, context: Context, { signal }: { signal: AbortSignal }) => {
    const { registry } = runtime;
    let settled = 0;
    let released = 0;
    await runWorker(runtime.broker(), registry, {
      // middy aborts this just before the Lambda timeout: stop taking, settle what is held.
      signal,
      queues: options.queues ?? registry.queues.map((queue) => queue.name),
      concurrency: options.maxInFlight ?? 100,
      executor: lambdaExecutor({
        functionName: (task) => deployedFunctionName(registry, task),
        batchSize: options.invokeBatchSize ?? 10,
        ...(options.client ? { client: options.client } : {}),
      }),
      keepTaking: () => context.getRemainingTimeInMillis() > stopAt,
      onOutcome: ({ outcome }) => {
        if (outcome.kind === 'released') released++;
        else settled++;
      },
    });
    return { settled, released };
  });
}
