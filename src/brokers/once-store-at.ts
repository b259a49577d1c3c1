/**
 * A {@link OnceStore} picked by URL, the way `createBroker` picks an adapter: Redis for
 * `redis://`/`rediss://`, RabbitMQ for `amqp://`/`amqps://`. The cron tick locks and the poller
 * relay use it, so that a deployment keeps both in its own broker and needs no second service.
 */
import { brokerKindOf, redisTransportOptions } from '../config/broker-config.js';
import { brokerSecretArnOf } from '../config/broker-secret.js';
import { InvalidConfigError } from '../core/errors.js';
import type { OnceStore } from '../core/once-store.js';
import { rabbitMqOnceStore } from './rabbitmq/rabbitmq-once-store.js';
import { redisOnceStore } from './redis/redis-once-store.js';

/** How {@link onceStoreAt} words its errors, and the store's secret. */
export interface OnceStoreAtOptions {
  /** What the store is for, the error's subject. @defaultValue `'once store'` */
  readonly subject?: string;
  /** What the store is called in a sentence. @defaultValue `'a once store'` */
  readonly noun?: string;
  /**
   * How to get a store on the broker this build lacks.
   * @defaultValue `'pass one built with redisOnceStore or rabbitMqOnceStore'`
   */
  readonly advice?: string;
  /**
   * Secrets Manager secret holding the store's credentials, `url` then holding none.
   * @defaultValue `BROKER_SECRET_ARN` when `url` is `BROKER_URL` (the broker's own), else none
   */
  readonly secretArn?: string | undefined;
}

/**
 * The {@link OnceStore} at `url`. A build for one broker (`SERVERLESS_CELERY_BROKER`) carries
 * only that broker's client, so a store on the other broker must be built and passed by hand.
 * A Redis URL's kombu transport options (`?visibility_timeout=`) are dropped: the broker reads
 * them, the store's connection must not see them.
 *
 * @throws InvalidConfigError (path `url`) for a URL of no broker, or of a broker not in this build
 * @example
 * const store = onceStoreAt(process.env.BROKER_URL ?? DEFAULT_BROKER_URL);
 */
export function onceStoreAt(
  url: string,
  options: OnceStoreAtOptions = {},
): OnceStore & { close(): Promise<void> } {
  const kind = brokerKindOf(url);
  // Decided on the URL as given: the Redis store's own drops the transport options.
  const secret = { secretArn: 'secretArn' in options ? options.secretArn : brokerSecretArnOf(url) };
  // The build check comes first and reads the variable itself, so that a bundler replacing it
  // drops the other broker's branch, and with it that client.
  if (process.env.SERVERLESS_CELERY_BROKER !== 'redis' && kind === 'rabbitmq') {
    return rabbitMqOnceStore(url, secret);
  }
  if (process.env.SERVERLESS_CELERY_BROKER !== 'rabbitmq' && kind === 'redis') {
    return redisOnceStore(redisTransportOptions(url).url, '', secret);
  }
  const noun = options.noun ?? 'a once store';
  const advice = options.advice ?? 'pass one built with redisOnceStore or rabbitMqOnceStore';
  const reason = kind
    ? `${noun} on ${url.slice(0, url.indexOf(':'))} is not in this build (SERVERLESS_CELERY_BROKER=${String(process.env.SERVERLESS_CELERY_BROKER)}): ${advice}`
    : 'not a redis://, rediss://, redis+cluster://, rediss+cluster://, amqp:// or amqps:// URL';
  throw new InvalidConfigError(options.subject ?? 'once store', [{ path: 'url', message: reason }]);
}
