/**
 * Picks the broker adapter from the configuration's `kind`.
 *
 * A function bundle need not carry both broker clients (ioredis is about 190 KiB minified,
 * amqplib about 120 KiB): a bundler that replaces `process.env.SERVERLESS_CELERY_BROKER` by a
 * constant (serverless.yml's esbuild `define`, from `${param:broker}`) drops the other adapter's
 * branch, and with it the adapter and its client (the package is `"sideEffects": false`).
 * Unbundled, the variable is normally unset and both kinds work.
 */
import { type BrokerConfigInput, parseBrokerConfig } from '../config/broker-config.js';
import { InvalidConfigError } from '../core/errors.js';
import type { Broker, BrokerOptionsBase } from './broker.js';
import { RabbitMqBroker } from './rabbitmq/rabbitmq-broker.js';
import { RedisBroker } from './redis/redis-broker.js';

/** Options of {@link createBroker}: declared queues, logger, clock. */
export type CreateBrokerOptions = BrokerOptionsBase;

/**
 * Creates a broker. Nothing connects until the first operation.
 *
 * @param config - broker options, or a broker URL
 * @throws InvalidConfigError for bad options, or a kind this bundle was built without
 * @example
 * const broker = createBroker(process.env.BROKER_URL ?? 'redis://127.0.0.1:6379/0', { queues: registry.queues });
 */
export function createBroker(config: BrokerConfigInput, options: CreateBrokerOptions = {}): Broker {
  const parsed = parseBrokerConfig(config);
  // Written as one comparison of the variable per branch, so that a bundler's constant folding
  // can prove a branch dead.
  if (parsed.kind === 'redis' && process.env.SERVERLESS_CELERY_BROKER !== 'rabbitmq') {
    return new RedisBroker({ config: parsed, ...options });
  }
  if (parsed.kind === 'rabbitmq' && process.env.SERVERLESS_CELERY_BROKER !== 'redis') {
    return new RabbitMqBroker({ config: parsed, ...options });
  }
  throw new InvalidConfigError('broker', [
    {
      path: 'kind',
      message: `${parsed.kind} is not in this build (SERVERLESS_CELERY_BROKER=${String(process.env.SERVERLESS_CELERY_BROKER)}): package with --param=broker=${parsed.kind}`,
    },
  ]);
}
