/**
 * Our Redis broker and client on a throw-away cluster's URL (test/helpers/redis-cluster.ts), for
 * the cluster connection tests: opened through our config parsing and client factory and closed
 * together after each test, a publish-receive-settle round trip that shows whether a broker
 * works, and what a failing operation rejects with, and how fast.
 */
import { RedisBroker } from '../../src/brokers/redis/redis-broker.js';
import { createRedisClient, type RedisClient } from '../../src/brokers/redis/redis-client.js';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import { REDIS_HOST, recordingLogger, taskMessage, uniqueQueue } from './redis.js';
import type { RedisCluster } from './redis-cluster.js';

const brokers: RedisBroker[] = [];
const clients: RedisClient[] = [];

/**
 * A {@link RedisBroker} of `config` (`kind: 'redis'` is added), parsed as a deployment's would be,
 * with a recording logger; closed by {@link closeOpened}.
 *
 * @throws InvalidConfigError when `config` does not parse.
 */
export function openBroker(config: Record<string, unknown>): RedisBroker {
  const parsed = parseBrokerConfig({ kind: 'redis', ...config } as { kind: 'redis' });
  if (parsed.kind !== 'redis') throw new Error(`not a Redis config: ${parsed.kind}`);
  const broker = new RedisBroker({ config: parsed, logger: recordingLogger() });
  brokers.push(broker);
  return broker;
}

/**
 * Our client of `url` (`createRedisClient`), trusting `tls.ca` if given; disconnected by
 * {@link closeOpened}. `loadRedisClient()` must have resolved first.
 */
export function openClient(url: string, tls?: { ca: string }): RedisClient {
  const client = createRedisClient(url, tls ? { tls: { ...tls, rejectUnauthorized: true } } : {});
  // Reasons reach the commands that fail; without a listener ioredis prints each round's.
  client.on('error', () => {});
  return keepClient(client);
}

/** Has {@link closeOpened} disconnect `client` too (e.g. a duplicate); returns it. */
export function keepClient(client: RedisClient): RedisClient {
  clients.push(client);
  return client;
}

/** Closes every broker and disconnects every client opened here since the last call (afterEach). */
export async function closeOpened(): Promise<void> {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
  for (const client of clients.splice(0)) client.disconnect();
}

/** Publishes two messages, receives and settles them; resolves with what was received. */
export async function roundTrip(broker: RedisBroker): Promise<{ received: number; left: object }> {
  const queue = uniqueQueue();
  await broker.publish([taskMessage(queue), taskMessage(queue)]);
  const deliveries = await broker.receive(queue, { max: 10, waitMs: 1000 });
  await broker.settle(deliveries.map((delivery) => ({ delivery, settlement: { kind: 'done' } })));
  const { ready, unacked } = await broker.stats(queue);
  return { received: deliveries.length, left: { ready, unacked } };
}

/**
 * The error `operation` rejects with, and how long it took; an `Error` saying so if it resolves.
 */
export async function failureOf(
  operation: () => Promise<unknown>,
): Promise<{ error: Error; ms: number }> {
  const started = performance.now();
  const error = await operation().then(
    () => new Error('expected a failure, got none'),
    (reason: unknown) => reason as Error,
  );
  return { error, ms: performance.now() - started };
}

/** `cluster 127.0.0.1:<p1>,…`, as errors name a cluster. */
export function endpointOf(cluster: RedisCluster): string {
  return `cluster ${cluster.ports.map((port) => `${REDIS_HOST}:${port}`).join(',')}`;
}
