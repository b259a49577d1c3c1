/**
 * The once store's default URL, apart from the Redis client that uses it: a RabbitMQ build asks
 * where a lock would live without carrying ioredis.
 */

/**
 * Where once-records live when nothing says otherwise: `ONCE_STORE_URL`, else the broker when it
 * is Redis (`BROKER_URL`), else the local Redis.
 */
export function defaultOnceStoreUrl(env: Record<string, string | undefined> = process.env): string {
  if (env.ONCE_STORE_URL) return env.ONCE_STORE_URL;
  const broker = env.BROKER_URL;
  return broker && /^rediss?:/.test(broker) ? broker : 'redis://127.0.0.1:6379/0';
}
