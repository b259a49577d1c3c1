/**
 * Broker configuration: a discriminated union on `kind`, parsed once (at cold start, or when the
 * CLI starts). Hand-written objects are strict, so a misspelt option fails loudly. A URL string
 * alone is accepted too, and its scheme picks the kind.
 */
import * as z from 'zod/mini';
import { InvalidConfigError } from '../core/errors.js';
import { safeParse, toFieldIssues } from '../core/zod-issues.js';
import {
  clusterPrefixProblem,
  defaultKeyPrefix,
  redisTransportOptions,
} from './redis-transport-options.js';
import {
  isRedisClusterUrl,
  isTlsRedisUrl,
  REDIS_URL_PATTERN,
  REDIS_URL_SCHEMES,
  singleNodeForm,
  splitClusterUrl,
} from './redis-url.js';

export { redisTransportOptions } from './redis-transport-options.js';

/** The local Redis the project's machines and the demo use. */
export const DEFAULT_BROKER_URL = 'redis://127.0.0.1:6379/0';

const UNPARSEABLE_URL = 'is not a valid URL (percent-encode @ / : # ? in user and password)';

/**
 * ARN of a Secrets Manager secret holding the broker's credentials (`BROKER_SECRET_ARN`); a
 * secret's name works too, as GetSecretValue takes either. The URL then carries none: the secret
 * is read when the first connection is opened, kept for the process's life and read anew when
 * the broker refuses it (see `broker-secret.ts`). A user name in the URL is used when the secret
 * names none (a Redis AUTH token); a password in the URL beside a secret is refused, since one of
 * the two would silently lose and the URL's is the one the secret exists to keep out of sight.
 */
const secretArnSchema = z.optional(z.string().check(z.minLength(1)));

/** Refuses a password in the URL beside a secret (see {@link secretArnSchema}). */
function checkSecretAndUrl(
  config: { url: string; secretArn?: string | undefined },
  context: { addIssue(issue: { code: 'custom'; path: string[]; message: string }): void },
): void {
  const url = singleNodeForm(config.url);
  if (config.secretArn && URL.canParse(url) && new URL(url).password !== '') {
    context.addIssue({
      code: 'custom',
      path: ['secretArn'],
      message: 'the url holds a password too: give it in the secret or in the url, not both',
    });
  }
}

/** Redis broker options. */
export const redisBrokerConfigSchema = z
  .strictObject({
    kind: z.literal('redis'),
    /**
     * `redis://[[user]:password@]host:port/db`, `rediss://` for TLS, or a Redis Cluster's
     * `redis+cluster://host:port[,host:port…]/` (`rediss+cluster://` with TLS, as ElastiCache
     * Serverless wants; see redis-url.ts); no password with `secretArn`.
     */
    url: z._default(
      z.string().check(
        z.regex(REDIS_URL_PATTERN, REDIS_URL_SCHEMES),
        // ioredis would throw Node's `Invalid URL` TypeError, whose `input` holds the password.
        z.refine(isParseableRedisUrl, UNPARSEABLE_URL),
        z.refine(hasClusterHosts, 'must list its nodes as host:port[,host:port…]'),
      ),
      DEFAULT_BROKER_URL,
    ),
    /**
     * kombu's `global_keyprefix`; must equal the Python side's. A URL may carry it as
     * `?global_keyprefix=…`. In a cluster it must hold a hash tag, so that every key is in one
     * slot. @defaultValue `''`, and `{celery}:` with a cluster URL
     */
    keyPrefix: z._default(z.string(), ''),
    /**
     * Seconds after which a held message whose consumer died is put back (kombu's
     * `visibility_timeout`; keep it equal to the Python workers' value). A URL may carry it as
     * `?visibility_timeout=960` instead ({@link redisTransportOptions}).
     */
    visibilityTimeout: z._default(z.number().check(z.positive()), 3600),
    /** Milliseconds to wait for a connection before a command fails. */
    connectTimeoutMs: z._default(z.int().check(z.positive()), 5000),
    /** Secrets Manager secret holding the credentials (see {@link secretArnSchema}). */
    secretArn: secretArnSchema,
    /**
     * TLS settings of a `rediss://` connection, for a server certificate Node does not trust by
     * itself (a private CA, a self-signed certificate). Without them Node's defaults apply.
     * Refused with `redis://`, which would otherwise silently switch to TLS.
     */
    tls: z.optional(
      z.strictObject({
        /** PEM text of the certificate authority that signed the server's certificate. */
        ca: z.optional(z.string().check(z.minLength(1))),
        /** `false` accepts a certificate that does not verify: test setups only. @defaultValue true */
        rejectUnauthorized: z._default(z.boolean(), true),
      }),
    ),
  })
  .check(
    z.superRefine((config, context) => {
      if (config.tls && !isTlsRedisUrl(config.url)) {
        context.addIssue({
          code: 'custom',
          path: ['tls'],
          message: 'needs a rediss:// or rediss+cluster:// url',
        });
      }
      if (isRedisClusterUrl(config.url)) checkClusterConfig(config, context);
      checkSecretAndUrl(config, context);
    }),
  );

/** What a cluster needs: one database, and keys that share a slot. */
function checkClusterConfig(
  config: { url: string; keyPrefix: string },
  context: { addIssue(issue: { code: 'custom'; path: string[]; message: string }): void },
): void {
  // A URL refused by its own checks has nothing more to say.
  if (!hasClusterHosts(config.url) || !isParseableRedisUrl(config.url)) return;
  const database = new URL(singleNodeForm(config.url)).pathname.replace(/^\//, '');
  if (database !== '' && database !== '0') {
    context.addIssue({
      code: 'custom',
      path: ['url'],
      message: `names database ${database}: a Redis Cluster has only database 0`,
    });
  }
  const problem = clusterPrefixProblem(config.keyPrefix, 'every key must be in one slot');
  if (problem) context.addIssue({ code: 'custom', path: ['keyPrefix'], message: problem });
}

/** Redis broker options after defaults. */
export type RedisBrokerConfig = z.output<typeof redisBrokerConfigSchema>;

/** The local RabbitMQ of the project's machines (default vhost). */
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/';

/** RabbitMQ (and Amazon MQ for RabbitMQ) broker options. */
export const rabbitmqBrokerConfigSchema = z
  .strictObject({
    kind: z.literal('rabbitmq'),
    /** `amqp://user:password@host:port/vhost`, or `amqps://` for TLS (Amazon MQ); no password with `secretArn`. */
    url: z._default(
      z
        .string()
        .check(
          z.regex(/^amqps?:\/\//, 'must start with amqp:// or amqps://'),
          z.refine(isParseableUrl, UNPARSEABLE_URL),
        ),
      DEFAULT_AMQP_URL,
    ),
    /** Unacknowledged messages a consumer channel may hold. */
    prefetch: z._default(z.int().check(z.positive(), z.maximum(65_535)), 100),
    /**
     * Queue type of the delay levels (kombu's native delayed delivery). Celery ≥ 5.5 declares
     * them `quorum` by default; both sides must agree or RabbitMQ refuses the second declaration.
     */
    delayQueueType: z._default(z.enum(['quorum', 'classic']), 'quorum'),
    /** Name prefix of the delay topology (Celery's `broker_native_delayed_delivery_prefix`). */
    delayPrefix: z._default(z.string(), ''),
    /**
     * Also set the AMQP `expiration` property from `expires`, as Celery does. Off by default:
     * RabbitMQ drops an expired message silently unless the queue has a dead-letter exchange,
     * while our consumers dead-letter expired messages with a reason.
     */
    setExpiration: z._default(z.boolean(), false),
    /** AMQP heartbeat in seconds (0 disables). */
    heartbeatSeconds: z._default(z.int().check(z.nonnegative()), 30),
    /** Milliseconds to wait for a connection. */
    connectTimeoutMs: z._default(z.int().check(z.positive()), 5000),
    /** Secrets Manager secret holding the credentials (see {@link secretArnSchema}). */
    secretArn: secretArnSchema,
  })
  .check(z.superRefine(checkSecretAndUrl));

/** RabbitMQ broker options after defaults. */
export type RabbitMqBrokerConfig = z.output<typeof rabbitmqBrokerConfigSchema>;

/** Any broker's options. */
export const brokerConfigSchema = z.discriminatedUnion('kind', [
  redisBrokerConfigSchema,
  rabbitmqBrokerConfigSchema,
]);

/** Broker options after defaults. */
export type BrokerConfig = z.output<typeof brokerConfigSchema>;

/** What {@link parseBrokerConfig} accepts: options, or just a URL. */
export type BrokerConfigInput = z.input<typeof brokerConfigSchema> | string;

/**
 * Parses broker options. A bare URL becomes `{ kind, url }` with the kind from its scheme.
 *
 * @throws InvalidConfigError naming every bad option (never echoing a password)
 */
export function parseBrokerConfig(input: BrokerConfigInput): BrokerConfig {
  const candidate = withUrlTransportOptions(typeof input === 'string' ? fromUrl(input) : input);
  const parsed = safeParse(brokerConfigSchema, candidate);
  if (!parsed.success) throw new InvalidConfigError('broker', toFieldIssues(parsed.error));
  return parsed.data;
}

/**
 * Moves a Redis URL's transport options into the options object, and gives a cluster URL its
 * default key prefix. An explicit option that disagrees with the URL's is refused: neither
 * could be said to win.
 */
function withUrlTransportOptions(candidate: unknown): unknown {
  if (typeof candidate !== 'object' || candidate === null) return candidate;
  const options = candidate as {
    kind?: unknown;
    url?: unknown;
    visibilityTimeout?: unknown;
    keyPrefix?: unknown;
  };
  // A URL the schema refuses anyway is left for the schema to report.
  if (options.kind !== 'redis' || typeof options.url !== 'string') return candidate;
  if (brokerKindOf(options.url) !== 'redis' || !isParseableRedisUrl(options.url)) return candidate;
  const { url, visibilityTimeout, keyPrefix } = redisTransportOptions(options.url);
  agree(options.visibilityTimeout, visibilityTimeout, 'visibilityTimeout', 'visibility_timeout');
  agree(options.keyPrefix, keyPrefix, 'keyPrefix', 'global_keyprefix');
  const prefix = options.keyPrefix ?? keyPrefix ?? defaultKeyPrefix(url);
  return {
    ...options,
    url,
    ...(visibilityTimeout === undefined ? {} : { visibilityTimeout }),
    ...(prefix === undefined ? {} : { keyPrefix: prefix }),
  };
}

function agree(explicit: unknown, fromUrl: unknown, path: string, param: string): void {
  if (explicit === undefined || fromUrl === undefined || explicit === fromUrl) return;
  throw new InvalidConfigError('broker', [
    {
      path,
      message: `${JSON.stringify(explicit)} disagrees with the url's ${param}=${JSON.stringify(fromUrl)}`,
    },
  ]);
}

/** The broker a URL names by its scheme (`redis://`, `rediss://`, `amqp://`, `amqps://`), or `null`. */
export function brokerKindOf(url: string): BrokerConfig['kind'] | null {
  if (REDIS_URL_PATTERN.test(url)) return 'redis';
  if (/^amqps?:\/\//.test(url)) return 'rabbitmq';
  return null;
}

function fromUrl(url: string): unknown {
  const kind = brokerKindOf(url);
  if (kind) return { kind, url };
  throw new InvalidConfigError('broker', [
    {
      path: 'url',
      message: `unsupported scheme in ${redactUrl(url)} (use redis://, rediss://, redis+cluster://, rediss+cluster://, amqp:// or amqps://)`,
    },
  ]);
}

/**
 * A broker URL safe to print: the password (and anything after the user name) replaced by `***`.
 * Everything up to the last `@` counts as credentials, so a password with an unencoded `@` or `/`
 * is hidden too (an `@` in the path or query is over-masked, never leaked).
 *
 * @example redactUrl('redis://:s3cret@host:6379/0') === 'redis://:***@host:6379/0'
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([\s\S]*)@/i, (_, scheme: string, auth: string) => {
    const user = auth.includes(':') ? auth.slice(0, auth.indexOf(':')) : auth;
    return `${scheme}${user}:***@`;
  });
}

function isParseableUrl(url: string): boolean {
  return URL.canParse(url);
}

/**
 * A Redis URL of either form (redis-url.ts) that a client can connect with. A cluster URL whose
 * host list is wrong is {@link hasClusterHosts}'s to report.
 */
function isParseableRedisUrl(url: string): boolean {
  if (!isRedisClusterUrl(url)) return URL.canParse(url);
  const parts = splitClusterUrl(url);
  return parts === undefined || URL.canParse(parts.single);
}

function hasClusterHosts(url: string): boolean {
  return !isRedisClusterUrl(url) || splitClusterUrl(url) !== undefined;
}

/** `host:port/db` of a URL (no credentials), for error messages. */
export function describeEndpoint(url: string): string {
  const cluster = splitClusterUrl(url);
  if (cluster) {
    const nodes = cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',');
    return `cluster ${nodes}`;
  }
  try {
    const parsed = new URL(url);
    const path = parsed.pathname && parsed.pathname !== '/' ? parsed.pathname : '';
    return `${parsed.hostname}:${parsed.port || '(default port)'}${path}`;
  } catch {
    // Not a parseable URL: show it with any credentials masked.
    return redactUrl(url);
  }
}
