/**
 * Executors run the messages of one task and report an outcome per message. The local executor
 * runs them in this process (`worker --invoke local`, tests, the demo); the Lambda executor
 * invokes the task's function (`src/lambda/lambda-executor.ts`).
 */
import { onceStoreFor } from '../brokers/redis/redis-once-store.js';
import type { TaskMessage } from '../core/message.js';
import type { Registry } from '../core/registry.js';
import { type RunOptions, runMessage } from '../core/run-task.js';
import { type TaskOutcome, toTaskOutcome } from '../core/task-outcome.js';

/** Runs batches of one task. */
export interface TaskExecutor {
  /**
   * Runs `messages` (all of task `task`) and returns one outcome per message, in order.
   *
   * @throws when the batch could not be run at all (the function could not be invoked, timed
   *   out or crashed); the dispatcher then re-queues the messages without spending a retry
   */
  execute(task: string, messages: readonly TaskMessage[]): Promise<TaskOutcome[]>;
}

/**
 * Runs tasks in this process, every message of a batch concurrently. Tasks that record their
 * runs (`atMostOnce`, `idempotent`) use `options.store`, else Redis at `ONCE_STORE_URL`, else
 * the broker's Redis.
 */
export function localExecutor(registry: Registry, runOptions: RunOptions = {}): TaskExecutor {
  const store = onceStoreFor(registry.tasks, runOptions.store);
  const options = store ? { ...runOptions, store } : runOptions;
  return {
    execute: (_task, messages) =>
      Promise.all(
        messages.map(async (message) =>
          toTaskOutcome(await runMessage(registry, message, options)),
        ),
      ),
  };
}
