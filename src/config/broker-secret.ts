/**
 * Broker credentials from AWS Secrets Manager: the broker URL carries no credentials, and a
 * secret (`secretArn` of the broker config, `BROKER_SECRET_ARN` in a function's environment)
 * holds them, so that no password sits in an environment, a template or a state file.
 *
 * The secret is the one the Amazon MQ event source reads, `{"username","password"}`; for Redis an
 * AUTH token, `{"password"}` or a plain-string secret (the default user), or
 * `{"username","password"}` for an ACL user.
 *
 * It is fetched when the first connection of a process needs it, with Powertools' Parameters
 * utility (imported then, so that a process without a secret never loads it) and kept in its
 * cache for the container's life. When the broker refuses the credentials (a rotated password),
 * the adapter asks for them again: fetched anew, bypassing the cache, at most once per
 * {@link SECRET_REFRESH_INTERVAL_MS}, then it reconnects. Nothing here ever puts a secret's
 * value in an error message. Reading the secret's text and filling in a URL are in
 * broker-credentials.ts.
 */
import { BrokerError, InvalidConfigError } from '../core/errors.js';
import {
  amqpCredentialIssues,
  type BrokerCredentials,
  parseBrokerSecret,
  withCredentials,
} from './broker-credentials.js';

/**
 * Seconds Powertools keeps a fetched secret: the container's life (Lambda containers live hours,
 * not a year). Its own default, 5 s, would refetch on every connection a RabbitMQ once store
 * opens; a rotated password is caught by the broker's refusal instead.
 */
export const SECRET_MAX_AGE_SECONDS = 365 * 24 * 3600;

/**
 * Shortest time between two fetches that bypass the cache. A broker that goes on refusing the
 * new credentials (a rotation whose `setSecret` step ran before `finishSecret`, a wrong secret)
 * then costs one GetSecretValue call per interval, not one per operation.
 */
export const SECRET_REFRESH_INTERVAL_MS = 5000;

/** Reads a secret's value; `forceFetch` bypasses any cache. */
export type SecretFetcher = (
  secretId: string,
  options: { readonly forceFetch: boolean },
) => Promise<string>;

/**
 * {@link SecretFetcher} with Powertools' `getSecret` (its shared provider and cache), which
 * calls GetSecretValue through `@aws-sdk/client-secrets-manager`: the Lambda runtime's copy in a
 * bundle (`@aws-sdk/*` stays external), so the SDK's settings apply (`AWS_REGION`,
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
 *
 * @throws BrokerError when the secret cannot be read (no permission, no such secret, no network)
 */
export const fetchSecretWithPowertools: SecretFetcher = async (secretId, { forceFetch }) => {
  let value: unknown;
  try {
    // Imported on first use: a process whose broker needs no secret never loads it.
    const { getSecret } = await import('@aws-lambda-powertools/parameters/secrets');
    value = await getSecret(secretId, { maxAge: SECRET_MAX_AGE_SECONDS, forceFetch });
  } catch (error) {
    // The SDK's message names the secret and the caller's role, never the value.
    const reason = error instanceof Error ? error.message : String(error);
    throw new BrokerError(`broker secret ${secretId}: cannot read it: ${reason}`, {
      cause: error,
    });
  }
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  throw new BrokerError(
    `broker secret ${secretId}: it has no value (SecretString or SecretBinary)`,
  );
};

/** Options of {@link BrokerSecret}. */
export interface BrokerSecretOptions {
  /** Reads the secret. @defaultValue {@link fetchSecretWithPowertools} */
  readonly fetch?: SecretFetcher;
  /** Milliseconds since some epoch, for the refresh interval. @defaultValue `performance.now` */
  readonly now?: () => number;
  /** @defaultValue {@link SECRET_REFRESH_INTERVAL_MS} */
  readonly refreshIntervalMs?: number;
}

/**
 * One secret's credentials, as the connections of a process share them: calls made while a fetch
 * is under way wait for it (a cold start's broker and relay store make one call, not two), and
 * refreshes are spaced by the refresh interval. The value itself is kept by the fetcher's cache
 * (Powertools'), not here.
 */
export class BrokerSecret {
  readonly secretId: string;
  readonly #fetch: SecretFetcher;
  readonly #now: () => number;
  readonly #refreshIntervalMs: number;
  #inFlight: Promise<BrokerCredentials> | undefined;
  #refreshedAt: number | undefined;

  constructor(secretId: string, options: BrokerSecretOptions = {}) {
    this.secretId = secretId;
    this.#fetch = options.fetch ?? fetchSecretWithPowertools;
    this.#now = options.now ?? (() => performance.now());
    this.#refreshIntervalMs = options.refreshIntervalMs ?? SECRET_REFRESH_INTERVAL_MS;
  }

  /** The credentials, from the fetcher's cache when it has them. */
  credentials(): Promise<BrokerCredentials> {
    this.#inFlight ??= this.#load(false);
    return this.#inFlight;
  }

  /**
   * The credentials fetched anew, bypassing the cache: the broker refused the ones in use. Within
   * the refresh interval of the last refresh, the cached ones (that refresh's) instead.
   */
  refresh(): Promise<BrokerCredentials> {
    const now = this.#now();
    if (this.#refreshedAt !== undefined && now - this.#refreshedAt < this.#refreshIntervalMs) {
      return this.credentials();
    }
    this.#refreshedAt = now;
    // A plain fetch under way may return what the broker just refused: this one replaces it.
    this.#inFlight = this.#load(true);
    return this.#inFlight;
  }

  #load(forceFetch: boolean): Promise<BrokerCredentials> {
    const loading = this.#fetch(this.secretId, { forceFetch }).then((text) =>
      parseBrokerSecret(text, this.secretId),
    );
    const settled = () => {
      if (this.#inFlight === loading) this.#inFlight = undefined;
    };
    loading.then(settled, settled);
    return loading;
  }
}

const secrets = new Map<string, BrokerSecret>();

/** The process-wide {@link BrokerSecret} of `secretId`, shared by every connection to it. */
export function brokerSecret(secretId: string): BrokerSecret {
  let secret = secrets.get(secretId);
  if (!secret) {
    secret = new BrokerSecret(secretId);
    secrets.set(secretId, secret);
  }
  return secret;
}

/**
 * The secret of a connection to `url` when nobody names one: `BROKER_SECRET_ARN` when `url` is
 * `BROKER_URL` (a once store or lock on the broker itself, which logs in as the broker does),
 * else none (a store elsewhere, `ONCE_STORE_URL` or `CRON_LOCK_URL`, carries its own credentials).
 */
export function brokerSecretArnOf(
  url: string,
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  return url === env.BROKER_URL && env.BROKER_SECRET_ARN ? env.BROKER_SECRET_ARN : undefined;
}

/** Where a connection goes: a broker URL, and the secret holding its credentials, if any. */
export interface BrokerEndpoint {
  readonly kind: 'redis' | 'rabbitmq';
  /** The broker URL; without a password when `secretArn` is set. */
  readonly url: string;
  /** ARN (or name) of the secret holding the credentials. */
  readonly secretArn?: string | undefined;
}

/** Options of {@link connectWithSecret}. */
export interface ConnectWithSecretOptions {
  /** True for the broker's refusal of the credentials (not of a permission, not a network error). */
  readonly isAuthFailure: (error: unknown) => boolean;
  /** The secret of an ARN. @defaultValue {@link brokerSecret}, the process-wide one */
  readonly secretOf?: (secretArn: string) => BrokerSecret;
}

/**
 * The URL to connect to `endpoint` with: its URL, with the secret's credentials filled in when
 * it has a secret.
 *
 * @param refresh - fetch the secret anew (the broker refused the credentials in use)
 * @throws InvalidConfigError for a secret of the wrong shape, or RabbitMQ credentials amqplib
 * cannot log in with (no user name anywhere, characters beyond ASCII)
 * @throws BrokerError when the secret cannot be read
 */
export async function brokerUrlOf(
  endpoint: BrokerEndpoint,
  refresh = false,
  secretOf: (secretArn: string) => BrokerSecret = brokerSecret,
): Promise<string> {
  if (!endpoint.secretArn) return endpoint.url;
  const secret = secretOf(endpoint.secretArn);
  const credentials = await (refresh ? secret.refresh() : secret.credentials());
  const issues =
    endpoint.kind === 'rabbitmq' ? amqpCredentialIssues(endpoint.url, credentials) : [];
  if (issues.length > 0)
    throw new InvalidConfigError(`broker secret ${endpoint.secretArn}`, issues);
  return withCredentials(endpoint.url, credentials);
}

/**
 * Runs `connect` with the URL of `endpoint` (credentials from its secret filled in); when the
 * broker refuses the credentials, fetches the secret anew and runs it once more, so that a
 * rotated password heals without a cold start. Without a secret, `connect` runs once with the
 * URL as it is. A refresh that brings the same credentials (within the refresh interval, or the
 * secret unchanged) rethrows the refusal instead of trying again.
 *
 * Meant for the moment a connection is opened (AMQP's handshake, Redis' AUTH), where a refusal
 * means nothing was done and trying again is safe.
 *
 * @example
 * const connection = await connectWithSecret(config, (url) => amqp.connect(url), {
 *   isAuthFailure: isAmqpAuthFailure,
 * });
 */
export async function connectWithSecret<T>(
  endpoint: BrokerEndpoint,
  connect: (url: string) => Promise<T>,
  options: ConnectWithSecretOptions,
): Promise<T> {
  if (!endpoint.secretArn) return connect(endpoint.url);
  const url = await brokerUrlOf(endpoint, false, options.secretOf);
  try {
    return await connect(url);
  } catch (error) {
    if (!options.isAuthFailure(error)) throw error;
    const renewed = await brokerUrlOf(endpoint, true, options.secretOf);
    if (renewed === url) throw error;
    return connect(renewed);
  }
}
