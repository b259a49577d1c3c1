/**
 * Picks the broker adapter from the configuration's `kind`.
 */
import { type BrokerConfigInput, parseBrokerConfig } from '../config/broker-config.js';
import type { Broker, BrokerOptionsBase } from './broker.js';
import { RabbitMqBroker } from './rabbitmq/rabbitmq-broker.js';
import { RedisBroker } from './redis/redis-broker.js';

/** Options of {@link createBroker}: declared queues, logger, clock. */
export type CreateBrokerOptions = BrokerOptionsBase;

/**
 * Creates a broker. Nothing connects until the first operation.
 *
 * @param config - broker options, or a broker URL
 * @throws InvalidConfigError for bad options
 * @example
 * const broker = createBroker(process.env.BROKER_URL ?? 'redis://127.0.0.1:6379/0', { queues: registry.queues });
 */
export function createBroker(config: BrokerConfigInput, options: CreateBrokerOptions = {}): Broker {
  const parsed = parseBrokerConfig(config);
  switch (parsed.kind) {
    case 'redis':
      return new RedisBroker({ config: parsed, ...options });
    case 'rabbitmq':
      return new RabbitMqBroker({ config: parsed, ...options });
  }
}
