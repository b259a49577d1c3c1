/**
 * {@link OnceStore} on Redis: `SET key 1 NX EX ttl`, as Sentry's scheduler and `at_most_once`
 * tasks do. One lazily created connection per store.
 */
import type { Redis } from 'ioredis';
import type { OnceStore } from '../../core/once-store.js';
import { loadRedisClient } from './redis-client.js';

/**
 * A Redis-backed {@link OnceStore}; keys get `prefix` (kombu's `global_keyprefix`, if any).
 *
 * @param url - @defaultValue {@link defaultOnceStoreUrl}: `ONCE_STORE_URL`, else the broker's Redis
 * @example
 * // functions/task-billing-charge.ts: an `atMostOnce` task
 * export const handler = createTaskHandler(registry, 'billing.charge', { store: redisOnceStore() });
 */
export function redisOnceStore(
  url: string = defaultOnceStoreUrl(),
  prefix = '',
): OnceStore & { close(): Promise<void> } {
  let redis: Redis | undefined;
  const client = async () => {
    if (!redis) {
      const RedisClient = await loadRedisClient();
      // Another call may have created it while ioredis was loading.
      redis ??= new RedisClient(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      // Without a listener ioredis reports failed reconnects as unhandled 'error' events; the
      // failing command rejects with the reason, and that is where it is reported.
      if (redis.listenerCount('error') === 0) redis.on('error', () => {});
    }
    return redis;
  };
  return {
    async claim(key, ttlSeconds) {
      const reply = await (await client()).set(
        `${prefix}${key}`,
        '1',
        'EX',
        Math.max(1, Math.ceil(ttlSeconds)),
        'NX',
      );
      return reply === 'OK';
    },
    exists: async (key) => (await (await client()).exists(`${prefix}${key}`)) === 1,
    async release(key) {
      await (await client()).del(`${prefix}${key}`);
    },
    async close() {
      await redis?.quit().catch(() => redis?.disconnect());
      redis = undefined;
    },
  };
}

/**
 * Where once-records live when nothing says otherwise: `ONCE_STORE_URL`, else the broker when it
 * is Redis (`BROKER_URL`), else the local Redis.
 */
export function defaultOnceStoreUrl(env: Record<string, string | undefined> = process.env): string {
  if (env.ONCE_STORE_URL) return env.ONCE_STORE_URL;
  const broker = env.BROKER_URL;
  return broker && /^rediss?:/.test(broker) ? broker : 'redis://127.0.0.1:6379/0';
}

/** True when some task of `tasks` records its runs (`atMostOnce` or `idempotent`). */
export function needsOnceStore(
  tasks: readonly { options: { atMostOnce: boolean; idempotent: boolean } }[],
): boolean {
  return tasks.some((task) => task.options.atMostOnce || task.options.idempotent);
}

/**
 * The once store `tasks` run with: `given`, else — when one of them records its runs — Redis at
 * {@link defaultOnceStoreUrl}, else none (no connection is made for tasks that do not need it).
 */
export function onceStoreFor(
  tasks: Parameters<typeof needsOnceStore>[0],
  given?: OnceStore,
): OnceStore | undefined {
  return given ?? (needsOnceStore(tasks) ? redisOnceStore(defaultOnceStoreUrl()) : undefined);
}
