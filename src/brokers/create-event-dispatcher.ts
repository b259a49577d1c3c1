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

/** Options of {@link createEventDispatcher}: who the events come from. */
export type CreateEventDispatcherOptions = EventStamp;

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
    return new RedisEventDispatcher({ config: parsed, ...options });
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
