/**
 * {@link OnceStore} on Redis: `SET key 1 NX EX ttl`, as Sentry's scheduler and `at_most_once`
 * tasks do. One lazily created connection per store.
 */
import { brokerSecretArnOf, brokerUrlOf } from '../../config/broker-secret.js';
import { REDIS_URL_PATTERN } from '../../config/redis-url.js';
import type { OnceStore } from '../../core/once-store.js';
import { createRedisClient, loadRedisClient, type RedisClient } from './redis-client.js';
import { isRedisAuthFailure } from './redis-connection.js';

/** Options of {@link redisOnceStore}. */
export interface RedisOnceStoreOptions {
  /**
   * Secrets Manager secret holding the credentials, `url` then holding none (see
   * `broker-secret.ts`); read anew when Redis refuses them.
   * @defaultValue `BROKER_SECRET_ARN` when `url` is `BROKER_URL` (the broker's own), else none
   */
  readonly secretArn?: string | undefined;
}

/**
 * A Redis-backed {@link OnceStore}; keys get `prefix` (kombu's `global_keyprefix`, if any).
 *
 * With a secret, a command that Redis refuses for its credentials (a password rotated while the
 * connection was down) reads the secret anew, reconnects and is sent once more: a refused
 * command was not run, so sending it again is safe.
 *
 * @param url - @defaultValue {@link defaultOnceStoreUrl}: `ONCE_STORE_URL`, else the broker's Redis
 * @example
 * // functions/task-billing-charge.ts: an `atMostOnce` task
 * export const handler = createTaskHandler(registry, 'billing.charge', { store: redisOnceStore() });
 */
export function redisOnceStore(
  url: string = defaultOnceStoreUrl(),
  prefix = '',
  options: RedisOnceStoreOptions = {},
): OnceStore & { close(): Promise<void> } {
  const endpoint = {
    kind: 'redis',
    url,
    secretArn: 'secretArn' in options ? options.secretArn : brokerSecretArnOf(url),
  } as const;
  let redis: RedisClient | undefined;
  // Bumped by each new client, so that a command refused on an old one is simply sent again.
  let generation = 0;
  // Set by a refusal seen on the connection ('error' event), for the next command to act on.
  let refused = false;
  const client = async (renew = false) => {
    if (!redis || renew) {
      await loadRedisClient();
      const at = await brokerUrlOf(endpoint, renew);
      // Another call may have created one while ioredis or the secret was loading.
      if (redis && !renew) return redis;
      redis?.disconnect();
      generation++;
      const created = createRedisClient(at);
      // Without a listener ioredis reports failed reconnects as unhandled 'error' events; the
      // failing command rejects with the reason, and that is where it is reported.
      created.on('error', (error: Error) => {
        if (endpoint.secretArn && created === redis && isRedisAuthFailure(error)) refused = true;
      });
      redis = created;
    }
    return redis;
  };
  const run = async <T>(command: (redis: RedisClient) => Promise<T>): Promise<T> => {
    if (refused) {
      refused = false;
      await client(true);
    }
    const started = generation;
    try {
      return await command(await client());
    } catch (error) {
      // After the first refusal ioredis rejects with "max retries", the reason only in the event.
      if (!endpoint.secretArn || !(isRedisAuthFailure(error) || refused)) throw error;
      refused = false;
      if (generation === started) await client(true);
      return command(await client());
    }
  };
  return {
    claim: (key, ttlSeconds) =>
      run(
        async (redis) =>
          (await redis.set(
            `${prefix}${key}`,
            '1',
            'EX',
            Math.max(1, Math.ceil(ttlSeconds)),
            'NX',
          )) === 'OK',
      ),
    exists: (key) => run(async (redis) => (await redis.exists(`${prefix}${key}`)) === 1),
    release: (key) =>
      run(async (redis) => {
        await redis.del(`${prefix}${key}`);
      }),
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
  return broker && REDIS_URL_PATTERN.test(broker) ? broker : 'redis://127.0.0.1:6379/0';
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
