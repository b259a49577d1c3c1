/**
 * Broker configuration: a discriminated union on `kind`, parsed once (at cold start, or when the
 * CLI starts). Hand-written objects are strict, so a misspelt option fails loudly. A URL string
 * alone is accepted too, and its scheme picks the kind.
 */
import * as z from 'zod/mini';
import { InvalidConfigError } from '../core/errors.js';
import { safeParse, toFieldIssues } from '../core/zod-issues.js';

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
  if (config.secretArn && URL.canParse(config.url) && new URL(config.url).password !== '') {
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
    /** `redis://[[user]:password@]host:port/db` or `rediss://` for TLS; no password with `secretArn`. */
    url: z._default(
      z.string().check(
        z.regex(/^rediss?:\/\//, 'must start with redis:// or rediss://'),
        // ioredis would throw Node's `Invalid URL` TypeError, whose `input` holds the password.
        z.refine(isParseableUrl, UNPARSEABLE_URL),
      ),
      DEFAULT_BROKER_URL,
    ),
    /** kombu's `global_keyprefix`; must equal the Python side's. */
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
      if (config.tls && !config.url.startsWith('rediss://')) {
        context.addIssue({ code: 'custom', path: ['tls'], message: 'needs a rediss:// url' });
      }
      checkSecretAndUrl(config, context);
    }),
  );

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
 * kombu's Redis `visibility_timeout` (seconds) as a query parameter of a Redis broker URL
 * (`redis://host:6379/0?visibility_timeout=960`), and the URL without it.
 *
 * ioredis copies every query parameter of its URL into its options, so a kombu option must not
 * reach it: the URL returned is the one to connect with. Other parameters are kept as written.
 *
 * @returns `visibilityTimeout` undefined when the URL sets none
 * @throws InvalidConfigError naming `url.visibility_timeout` for a value that is not a positive
 * number of seconds, or one given more than once
 * @example
 * redisTransportOptions('redis://cache:6379/0?visibility_timeout=960')
 * // → { url: 'redis://cache:6379/0', visibilityTimeout: 960 }
 */
export function redisTransportOptions(url: string): { url: string; visibilityTimeout?: number } {
  const query = queryOf(url);
  if (!query) return { url };
  const values = new URLSearchParams(query.text).getAll(VISIBILITY_TIMEOUT_PARAM);
  if (values.length === 0) return { url };
  if (values.length > 1) throw badVisibilityTimeout('is given more than once');
  const value = values[0] ?? '';
  const seconds = Number(value);
  // Number() alone would take '', ' 1', '0x10' and '1e3'; kombu's users write plain seconds.
  if (!/^\d*\.?\d+$/.test(value) || !(seconds > 0)) {
    throw badVisibilityTimeout(
      `must be a positive number of seconds, not ${JSON.stringify(value)}`,
    );
  }
  const kept = query.text
    .split('&')
    .filter((pair) => !new URLSearchParams(pair).has(VISIBILITY_TIMEOUT_PARAM));
  const rest = kept.length > 0 ? `?${kept.join('&')}` : '';
  return {
    url: `${url.slice(0, query.start)}${rest}${url.slice(query.end)}`,
    visibilityTimeout: seconds,
  };
}

/** kombu's name of the Redis transport option, as the URL's query carries it. */
const VISIBILITY_TIMEOUT_PARAM = 'visibility_timeout';

function badVisibilityTimeout(message: string): InvalidConfigError {
  return new InvalidConfigError('broker', [{ path: `url.${VISIBILITY_TIMEOUT_PARAM}`, message }]);
}

/** The query of `url` without its `?`, and where it starts (at the `?`) and ends (a `#` or the end). */
function queryOf(url: string): { text: string; start: number; end: number } | undefined {
  const start = url.indexOf('?');
  const hash = url.indexOf('#');
  if (start === -1 || (hash !== -1 && hash < start)) return undefined;
  const end = hash === -1 ? url.length : hash;
  return { text: url.slice(start + 1, end), start, end };
}

/**
 * Moves a Redis URL's transport options into the options object. An explicit
 * `visibilityTimeout` that disagrees with the URL's is refused: neither could be said to win.
 */
function withUrlTransportOptions(candidate: unknown): unknown {
  if (typeof candidate !== 'object' || candidate === null) return candidate;
  const options = candidate as { kind?: unknown; url?: unknown; visibilityTimeout?: unknown };
  // A URL the schema refuses anyway is left for the schema to report.
  if (options.kind !== 'redis' || typeof options.url !== 'string') return candidate;
  if (brokerKindOf(options.url) !== 'redis' || !isParseableUrl(options.url)) return candidate;
  const { url, visibilityTimeout } = redisTransportOptions(options.url);
  if (visibilityTimeout === undefined) return candidate;
  const explicit = options.visibilityTimeout;
  if (typeof explicit === 'number' && explicit !== visibilityTimeout) {
    throw new InvalidConfigError('broker', [
      {
        path: 'visibilityTimeout',
        message: `${explicit} disagrees with the url's ${VISIBILITY_TIMEOUT_PARAM}=${visibilityTimeout}`,
      },
    ]);
  }
  return { ...options, url, visibilityTimeout };
}

/** The broker a URL names by its scheme (`redis://`, `rediss://`, `amqp://`, `amqps://`), or `null`. */
export function brokerKindOf(url: string): BrokerConfig['kind'] | null {
  if (/^rediss?:\/\//.test(url)) return 'redis';
  if (/^amqps?:\/\//.test(url)) return 'rabbitmq';
  return null;
}

function fromUrl(url: string): unknown {
  const kind = brokerKindOf(url);
  if (kind) return { kind, url };
  throw new InvalidConfigError('broker', [
    {
      path: 'url',
      message: `unsupported scheme in ${redactUrl(url)} (use redis://, rediss://, amqp:// or amqps://)`,
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

/** `host:port/db` of a URL (no credentials), for error messages. */
export function describeEndpoint(url: string): string {
  try {
    const parsed = new URL(url);
    const path = parsed.pathname && parsed.pathname !== '/' ? parsed.pathname : '';
    return `${parsed.hostname}:${parsed.port || '(default port)'}${path}`;
  } catch {
    // Not a parseable URL: show it with any credentials masked.
    return redactUrl(url);
  }
}
