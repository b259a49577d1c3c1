/**
 * ioredis, imported once and on first use: a process that loads the library without connecting
 * to Redis (a CLI call on RabbitMQ, an app importing the package) does not pay for loading it
 * (about 120 ms on this machine), and a bundle built for Redis inlines it as before.
 */
import type { Redis } from 'ioredis';

let RedisClient: typeof Redis | undefined;

/** Imports ioredis (once) and resolves with its client class. */
export async function loadRedisClient(): Promise<typeof Redis> {
  RedisClient ??= (await import('ioredis')).Redis;
  return RedisClient;
}

/**
 * ioredis's client class, for code that runs after {@link loadRedisClient} resolved.
 *
 * @throws Error when ioredis was not loaded yet (a programming error)
 */
export function loadedRedisClient(): typeof Redis {
  if (!RedisClient) throw new Error('ioredis is not loaded yet: await loadRedisClient() first');
  return RedisClient;
}
