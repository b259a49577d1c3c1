/**
 * The messages a worker is running now, for Celery's `inspect active` (remote-control.ts): the
 * flow adds an execution's messages as it starts and removes them as it ends.
 */
import type { TaskMessage } from '../core/message.js';
import type { ActiveTask } from '../core/remote-control.js';

/** Messages running now, by id. */
export class ActiveTasks {
  readonly #running = new Map<string, ActiveTask>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** An execution of `messages` starts. */
  started(messages: readonly TaskMessage[]): void {
    const startedAt = this.#now();
    for (const message of messages) this.#running.set(message.id, { message, startedAt });
  }

  /** An execution of `messages` ended. */
  ended(messages: readonly TaskMessage[]): void {
    for (const message of messages) this.#running.delete(message.id);
  }

  /** What runs now, oldest first. */
  list(): ActiveTask[] {
    return [...this.#running.values()];
  }
}
