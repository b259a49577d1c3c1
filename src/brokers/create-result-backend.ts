/**
 * Creates the result backend an app configured, gated like {@link createBroker}: a bundle for an
 * app that stores no results need not carry the Redis client (ioredis is about 190 KiB minified,
 * all of a RabbitMQ dispatcher's Redis code). A bundler that replaces
 * `process.env.SERVERLESS_CELERY_RESULTS` by `"none"` (the plugin does, unless
 * `custom.celery.resultBackend` is set) drops the branch, and with it the backend and ioredis.
 * Unbundled, the variable is normally unset and the backend works.
 */
import type { ResultBackendInput } from '../config/result-backend-config.js';
import { InvalidConfigError } from '../core/errors.js';
import {
  RedisResultBackend,
  type RedisResultBackendOptions,
} from './redis/redis-result-backend.js';

/**
 * The Redis result backend at `input`; nothing connects until it is used.
 *
 * @throws InvalidConfigError (path `url`) when this bundle was built without results
 */
export function createResultBackend(
  input: ResultBackendInput,
  options: RedisResultBackendOptions = {},
): RedisResultBackend {
  // One comparison of the variable, so that a bundler's constant folding can prove it dead.
  if (process.env.SERVERLESS_CELERY_RESULTS !== 'none') {
    return new RedisResultBackend(input, options);
  }
  throw new InvalidConfigError('resultBackend', [
    {
      path: 'url',
      message:
        'results are not in this build (SERVERLESS_CELERY_RESULTS=none): set custom.celery.resultBackend and package again',
    },
  ]);
}
