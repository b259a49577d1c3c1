/**
 * The CLI's broker and tick lock, loaded when first used rather than when the CLI starts: each
 * broker client costs its import (ioredis about 120 ms, amqplib about 35 ms on this machine), a
 * CLI call that needs one loads only that one, and `--help` loads neither. Lambda functions use
 * `createBroker` directly: their bundler drops the other broker's client instead.
 */
import type { Broker, BrokerOptionsBase } from '../brokers/broker.js';
import type { BrokerConfig } from '../config/broker-config.js';
import type { TickLock } from '../lambda/cron-handler.js';

/** A broker of `config.kind` whose adapter module is imported on its first operation. */
export function lazyBroker(config: BrokerConfig, options: BrokerOptionsBase): Broker {
  let loading: Promise<Broker> | undefined;
  const load = () => {
    loading ??=
      config.kind === 'redis'
        ? import('../brokers/redis/redis-broker.js').then(
            ({ RedisBroker }) => new RedisBroker({ config, ...options }),
          )
        : import('../brokers/rabbitmq/rabbitmq-broker.js').then(
            ({ RabbitMqBroker }) => new RabbitMqBroker({ config, ...options }),
          );
    return loading;
  };
  const broker: Broker = {
    kind: config.kind,
    publish: async (messages) => (await load()).publish(messages),
    receive: async (queue, receiveOptions) => (await load()).receive(queue, receiveOptions),
    settle: async (items) => (await load()).settle(items),
    deadLetter: async (items) => (await load()).deadLetter(items),
    stats: async (queue) => (await load()).stats(queue),
    deadLetters: async (queue, limit) => (await load()).deadLetters(queue, limit),
    replayDeadLetters: async (queue, filter) => (await load()).replayDeadLetters(queue, filter),
    purgeDeadLetters: async (queue, filter) => (await load()).purgeDeadLetters(queue, filter),
    // Nothing to close before the first operation: no adapter, so no connection.
    close: async () => (loading ? (await loading).close() : undefined),
  };
  // The optional operations are Redis's: a RabbitMQ broker leaves them out, as its adapter does.
  if (config.kind === 'redis') {
    return {
      ...broker,
      promoteDue: async (queue, limit) => (await load()).promoteDue?.(queue, limit) ?? 0,
      restoreStale: async () => (await load()).restoreStale?.() ?? 0,
    };
  }
  return broker;
}

/** `tickLockAt(url)`, with the lock's module and client imported on its first claim. */
export function lazyTickLock(url: string): TickLock {
  let loading: Promise<TickLock> | undefined;
  const load = () => {
    loading ??= import('../lambda/cron-handler.js').then(({ tickLockAt }) => tickLockAt(url));
    return loading;
  };
  return {
    claim: async (key, ttlSeconds) => (await load()).claim(key, ttlSeconds),
    release: async (key) => (await load()).release?.(key),
    close: async () => (loading ? (await loading).close?.() : undefined),
  };
}
