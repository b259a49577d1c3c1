/**
 * Broker configuration: a discriminated union on `kind`, parsed once (at cold start, or when the
 * CLI starts). Hand-written objects are strict, so a misspelt option fails loudly. A URL string
 * alone is accepted too, and its scheme picks the kind.
 */
import { z } from 'zod';
import { InvalidConfigError } from '../core/errors.js';
import { toFieldIssues } from '../core/zod-issues.js';

/** The local Redis the project's machines and the demo use. */
export const DEFAULT_BROKER_URL = 'redis://127.0.0.1:6379/0';

/** Redis broker options. */
export const redisBrokerConfigSchema = z.strictObject({
  kind: z.literal('redis'),
  /** `redis://[[user]:password@]host:port/db` or `rediss://` for TLS. */
  url: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .default(DEFAULT_BROKER_URL),
  /** kombu's `global_keyprefix`; must equal the Python side's. */
  keyPrefix: z.string().default(''),
  /**
   * Seconds after which a held message whose consumer died is put back (kombu's
   * `visibility_timeout`; keep it equal to the Python workers' value).
   */
  visibilityTimeout: z.number().positive().default(3600),
  /** Milliseconds to wait for a connection before a command fails. */
  connectTimeoutMs: z.number().int().positive().default(5000),
});

/** Redis broker options after defaults. */
export type RedisBrokerConfig = z.output<typeof redisBrokerConfigSchema>;

/** Any broker's options. */
export const brokerConfigSchema = z.discriminatedUnion('kind', [redisBrokerConfigSchema]);

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
  const candidate = typeof input === 'string' ? fromUrl(input) : input;
  const parsed = brokerConfigSchema.safeParse(candidate);
  if (!parsed.success) throw new InvalidConfigError('broker', toFieldIssues(parsed.error));
  return parsed.data;
}

function fromUrl(url: string): unknown {
  if (/^rediss?:\/\//.test(url)) return { kind: 'redis', url };
  throw new InvalidConfigError('broker', [
    { path: 'url', message: `unsupported scheme in ${redactUrl(url)} (use redis:// or rediss://)` },
  ]);
}

/**
 * A broker URL safe to print: the password (and anything after the user name) replaced by `***`.
 *
 * @example redactUrl('redis://:s3cret@host:6379/0') === 'redis://:***@host:6379/0'
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_, scheme: string, auth: string) => {
    const user = auth.includes(':') ? auth.slice(0, auth.indexOf(':')) : auth;
    return `${scheme}${user}:***@`;
  });
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
