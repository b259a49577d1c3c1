/**
 * Publishing from application code without HTTP: `publisher.delay(task, kwargs)` and
 * `publisher.applyAsync(task, call)`, typed by each task's schemas (Celery's `delay` and
 * `apply_async`).
 */
import type { Broker } from '../brokers/broker.js';
import type { ArgsSchema, KwargsSchema, Task, TaskCallInput } from '../core/task.js';

/** Publishes calls of declared tasks. */
export interface Publisher {
  /**
   * Publishes a call with kwargs only. Resolves to the task id.
   *
   * @throws InvalidArgumentsError, PayloadTooLargeError before anything is sent
   * @throws BrokerError when the broker is unreachable (nothing was published)
   */
  delay<K extends KwargsSchema, A extends ArgsSchema>(
    task: Task<K, A>,
    kwargs?: TaskCallInput<K, A>['kwargs'],
  ): Promise<string>;
  /** Publishes a call with args, kwargs and options (countdown, eta, expires, priority, …). */
  applyAsync<K extends KwargsSchema, A extends ArgsSchema>(
    task: Task<K, A>,
    call?: TaskCallInput<K, A>,
  ): Promise<string>;
}

/**
 * Creates a publisher on a broker.
 *
 * @example
 * const publisher = createPublisher(broker);
 * const id = await publisher.delay(saveEvent, { event_id: 'evt-42' });
 */
export function createPublisher(broker: Broker): Publisher {
  const applyAsync: Publisher['applyAsync'] = async (task, call = {}) => {
    const message = task.createMessage(call);
    await broker.publish([message]);
    return message.id;
  };
  return {
    applyAsync,
    delay: (task, kwargs) => applyAsync(task, kwargs === undefined ? {} : { kwargs }),
  };
}
