/**
 * kombu's Redis transport options a broker URL may carry in its query, as Celery users write
 * them in `broker_transport_options`: `visibility_timeout` (seconds) and `global_keyprefix`; and
 * the key prefix a Redis Cluster needs.
 *
 * ioredis copies every query parameter of its URL into its options, so a kombu option must not
 * reach it: the URL returned is the one to connect with. Other parameters are kept as written.
 */
import { InvalidConfigError } from '../core/errors.js';
import { isRedisClusterUrl } from './redis-url.js';

/** What {@link redisTransportOptions} read off a URL. */
export interface RedisTransportOptions {
  /** The URL without the options below. */
  readonly url: string;
  /** kombu's `visibility_timeout`, seconds; undefined when the URL sets none. */
  readonly visibilityTimeout?: number;
  /** kombu's `global_keyprefix`; undefined when the URL sets none. */
  readonly keyPrefix?: string;
}

/**
 * The key prefix of a cluster URL that names none: a hash tag, so that every key (queues,
 * `unacked`, delays, dead letters) is in one slot, as our scripts and transactions, and kombu's,
 * need. It is what Celery users of ElastiCache Serverless set (`global_keyprefix`).
 */
export const CLUSTER_KEY_PREFIX = '{celery}:';

/**
 * True when every key under `prefix` hashes to one slot: the prefix holds a hash tag, a `{`
 * (its first) closed by a `}` with something between (Redis hashes only that part).
 */
export function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  return open !== -1 && prefix.indexOf('}', open + 1) > open + 1;
}

/** The key prefix a URL gets when none is given: {@link CLUSTER_KEY_PREFIX} for a cluster. */
export function defaultKeyPrefix(url: string): string | undefined {
  return isRedisClusterUrl(url) ? CLUSTER_KEY_PREFIX : undefined;
}

/**
 * What is wrong with `prefix` as a cluster's key prefix (no hash tag), saying what `needs` one;
 * undefined when nothing is.
 */
export function clusterPrefixProblem(prefix: string, needs: string): string | undefined {
  if (hasHashTag(prefix)) return undefined;
  return (
    `${JSON.stringify(prefix)} holds no hash tag: in a cluster ${needs}, ` +
    `e.g. ${JSON.stringify(CLUSTER_KEY_PREFIX)} (kombu's global_keyprefix)`
  );
}

/**
 * Reads kombu's transport options off a Redis broker URL.
 *
 * @throws InvalidConfigError naming `url.visibility_timeout` for a value that is not a positive
 * number of seconds, or `url.<option>` for an option given more than once
 * @example
 * redisTransportOptions('redis://cache:6379/0?visibility_timeout=960')
 * // → { url: 'redis://cache:6379/0', visibilityTimeout: 960 }
 * redisTransportOptions('redis+cluster://a:7000/?global_keyprefix=%7Bjobs%7D:')
 * // → { url: 'redis+cluster://a:7000/', keyPrefix: '{jobs}:' }
 */
export function redisTransportOptions(url: string): RedisTransportOptions {
  const query = queryOf(url);
  if (!query) return { url };
  const params = new URLSearchParams(query.text);
  const visibility = single(params, VISIBILITY_TIMEOUT);
  const keyPrefix = single(params, GLOBAL_KEYPREFIX);
  if (visibility === undefined && keyPrefix === undefined) return { url };
  const kept = query.text.split('&').filter((pair) => {
    const names = new URLSearchParams(pair);
    return !names.has(VISIBILITY_TIMEOUT) && !names.has(GLOBAL_KEYPREFIX);
  });
  const rest = kept.length > 0 ? `?${kept.join('&')}` : '';
  return {
    url: `${url.slice(0, query.start)}${rest}${url.slice(query.end)}`,
    ...(visibility === undefined ? {} : { visibilityTimeout: seconds(visibility) }),
    ...(keyPrefix === undefined ? {} : { keyPrefix }),
  };
}

/** kombu's names of the options, as the URL's query carries them. */
const VISIBILITY_TIMEOUT = 'visibility_timeout';
const GLOBAL_KEYPREFIX = 'global_keyprefix';

function single(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  if (values.length > 1) throw badOption(name, 'is given more than once');
  return values[0];
}

function seconds(value: string): number {
  const number = Number(value);
  // Number() alone would take '', ' 1', '0x10' and '1e3'; kombu's users write plain seconds.
  if (!/^\d*\.?\d+$/.test(value) || !(number > 0)) {
    throw badOption(
      VISIBILITY_TIMEOUT,
      `must be a positive number of seconds, not ${JSON.stringify(value)}`,
    );
  }
  return number;
}

function badOption(name: string, message: string): InvalidConfigError {
  return new InvalidConfigError('broker', [{ path: `url.${name}`, message }]);
}

/** The query of `url` without its `?`, and where it starts (at the `?`) and ends (a `#` or the end). */
function queryOf(url: string): { text: string; start: number; end: number } | undefined {
  const start = url.indexOf('?');
  const hash = url.indexOf('#');
  if (start === -1 || (hash !== -1 && hash < start)) return undefined;
  const end = hash === -1 ? url.length : hash;
  return { text: url.slice(start + 1, end), start, end };
}
