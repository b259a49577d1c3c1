/**
 * Executors run the messages of one task and report an outcome per message. The local executor
 * runs them in this process (`worker --invoke local`, tests, the demo); the Lambda executor
 * invokes the task's function (`src/lambda/lambda-executor.ts`).
 */
import { onceStoreFor } from '../brokers/redis/redis-once-store.js';
import { CeleryError } from '../core/errors.js';
import type { TaskMessage } from '../core/message.js';
import type { Registry } from '../core/registry.js';
import { type RunOptions, runMessage } from '../core/run-task.js';
import { type TaskOutcome, toTaskOutcome } from '../core/task-outcome.js';

/** Runs messages of one task, `batchSize` at most per call. */
export interface TaskExecutor {
  /**
   * Most messages per {@link TaskExecutor.execute} call: 1 runs each message on its own (the
   * local executor), more batches them into one invoke. @defaultValue 1
   */
  readonly batchSize?: number;
  /**
   * Runs `messages` (all of task `task`) and returns one outcome per message, in order.
   *
   * @throws {@link ThrottledError} when the executor is over its rate or concurrency: the
   *   messages wait and are tried again, nothing counted
   * @throws anything else when the batch could not be run at all (the function could not be
   *   invoked, timed out or crashed); the messages are re-queued without spending a task retry
   */
  execute(task: string, messages: readonly TaskMessage[]): Promise<TaskOutcome[]>;
}

/** The executor is throttled (Lambda's `TooManyRequestsException`): try again later. */
export class ThrottledError extends CeleryError {
  override name = 'ThrottledError' as const;
}

/** True for a {@link ThrottledError}, by class or, for one rebuilt from a wire, by name. */
export function isThrottled(error: Error): boolean {
  return error instanceof ThrottledError || error.name === 'ThrottledError';
}

/**
 * What a worker running tasks in this process keeps of each run: with a result backend every
 * result (to be stored) and chord parts are admitted; with Celery events every result too, for
 * `task-succeeded`'s.
 */
export function workerRunOptions(worker: {
  readonly resultBackend?: unknown;
  readonly events?: unknown;
}): RunOptions {
  return {
    ...(worker.resultBackend ? { keepResults: true, results: true } : {}),
    ...(worker.events ? { keepResults: true } : {}),
  };
}

/**
 * Runs tasks in this process, one message per execution. Tasks that record their runs
 * (`atMostOnce`, `idempotent`) use `options.store`, else Redis at `ONCE_STORE_URL`, else the
 * broker's Redis.
 */
export function localExecutor(registry: Registry, runOptions: RunOptions = {}): TaskExecutor {
  const store = onceStoreFor(registry.tasks, runOptions.store);
  const options = store ? { ...runOptions, store } : runOptions;
  return {
    batchSize: 1,
    execute: (_task, messages) =>
      Promise.all(
        messages.map(async (message) =>
          toTaskOutcome(await runMessage(registry, message, options)),
        ),
      ),
  };
}
