/**
 * Picks the remote-control mailbox of the broker's kind, so requests reach the worker where its
 * tasks come from (Celery's pidbox lives on the broker). Like `create-event-dispatcher.ts`, each
 * branch compares `SERVERLESS_CELERY_BROKER` once, so a bundle built for one kind drops the other.
 */
import { type BrokerConfigInput, parseBrokerConfig } from '../config/broker-config.js';
import { InvalidConfigError } from '../core/errors.js';
import type { ControlMailbox } from '../core/remote-control.js';
import { RabbitMqControlMailbox } from './rabbitmq/rabbitmq-pidbox.js';
import { RedisControlMailbox } from './redis/redis-pidbox.js';

/**
 * Creates a remote-control mailbox for a broker; it connects when the worker listens, over a
 * connection of its own, so close it besides the broker.
 *
 * @param config - the broker's options, or its URL
 * @throws InvalidConfigError for bad options, or a kind this bundle was built without
 * @example
 * const mailbox = createControlMailbox(process.env.BROKER_URL ?? 'redis://127.0.0.1:6379/0');
 * await runWorker(broker, registry, { queues: ['celery'], remoteControl: mailbox, signal });
 * await mailbox.close();
 */
export function createControlMailbox(config: BrokerConfigInput): ControlMailbox {
  const parsed = parseBrokerConfig(config);
  if (parsed.kind === 'redis' && process.env.SERVERLESS_CELERY_BROKER !== 'rabbitmq') {
    return new RedisControlMailbox(parsed);
  }
  if (parsed.kind === 'rabbitmq' && process.env.SERVERLESS_CELERY_BROKER !== 'redis') {
    return new RabbitMqControlMailbox(parsed);
  }
  throw new InvalidConfigError('broker', [
    {
      path: 'kind',
      message: `${parsed.kind} is not in this build (SERVERLESS_CELERY_BROKER=${String(process.env.SERVERLESS_CELERY_BROKER)})`,
    },
  ]);
}
