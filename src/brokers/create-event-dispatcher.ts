/**
 * Picks the event dispatcher of the broker's kind, so events go where the tasks go (Celery
 * sends events over the broker connection). Like `create-broker.ts`, each branch compares
 * `SERVERLESS_CELERY_BROKER` once, so a bundle built for one kind drops the other's client.
 */
import { type BrokerConfigInput, parseBrokerConfig } from '../config/broker-config.js';
import { InvalidConfigError } from '../core/errors.js';
import type { EventDispatcher, EventStamp } from '../core/event-dispatcher.js';
import { RabbitMqEventDispatcher } from './rabbitmq/rabbitmq-events.js';
import { RedisEventDispatcher } from './redis/redis-events.js';

/** Options of {@link createEventDispatcher}: who the events come from, and how they are sent. */
export interface CreateEventDispatcherOptions extends EventStamp {
  /**
   * On RabbitMQ, wait for the broker's publisher confirms before a send resolves: a Lambda
   * environment may be frozen with events still in its socket buffer. A long-lived worker sends
   * without them, as Python Celery does (its closing handshake still delivers what it wrote),
   * and spares the broker their cost: a no-op drain with events on ran at 0.74 of its rate
   * without events with confirms, at 0.87–0.97 without them (bench/drain.ts, medians of 9;
   * bench/results/run-2026-12-05T1757-events.md).
   * Redis always answers each publish. @defaultValue true
   */
  readonly confirm?: boolean;
}

/**
 * Creates an event dispatcher for a broker. Nothing connects until the first send; it opens a
 * connection of its own, so close it besides the broker.
 *
 * @param config - the broker's options, or its URL
 * @throws InvalidConfigError for bad options, or a kind this bundle was built without
 * @example
 * const events = createEventDispatcher(process.env.BROKER_URL ?? 'redis://127.0.0.1:6379/0');
 * await events.send([taskReceived(message), taskStarted(message.id)]);
 */
export function createEventDispatcher(
  config: BrokerConfigInput,
  options: CreateEventDispatcherOptions = {},
): EventDispatcher {
  const parsed = parseBrokerConfig(config);
  if (parsed.kind === 'redis' && process.env.SERVERLESS_CELERY_BROKER !== 'rabbitmq') {
    const { confirm: _confirm, ...stamp } = options;
    return new RedisEventDispatcher({ config: parsed, ...stamp });
  }
  if (parsed.kind === 'rabbitmq' && process.env.SERVERLESS_CELERY_BROKER !== 'redis') {
    return new RabbitMqEventDispatcher({ config: parsed, ...options });
  }
  throw new InvalidConfigError('broker', [
    {
      path: 'kind',
      message: `${parsed.kind} is not in this build (SERVERLESS_CELERY_BROKER=${String(process.env.SERVERLESS_CELERY_BROKER)}): package with --param=broker=${parsed.kind}`,
    },
  ]);
}
