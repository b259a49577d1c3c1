/**
 * ioredis connections made from a broker URL, with errors a person can act on and no secret in
 * them. Commands fail fast when Redis is down (a producer answers 503 rather than hanging).
 */
import { describeEndpoint } from '../../config/broker-config.js';
import { BrokerError } from '../../core/errors.js';
import { PROMOTE_LUA } from './lua/promote.js';
import { RECEIVE_LUA } from './lua/receive.js';
import { REPLAY_ONE_LUA } from './lua/replay-one.js';
import { DEAD_LETTER_ONE_LUA, RELEASE_MUTEX_LUA, RESTORE_ONE_LUA } from './lua/restore-one.js';
import { createRedisClient, type RedisClient } from './redis-client.js';

/** Our Lua scripts as ioredis commands (EVALSHA, falling back to EVAL once per connection). */
export interface ScriptCommands {
  scReceive(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<string[]>;
  scPromote(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
  scRestoreOne(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
  scDeadLetterOne(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
  scReleaseMutex(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
  scReplayOne(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
}

/** An ioredis client (a single node's or a cluster's) with our scripts defined. */
export type ScriptedRedis = RedisClient & ScriptCommands;

/** Options for {@link connectRedis}. */
export interface RedisConnectOptions {
  readonly url: string;
  readonly connectTimeoutMs: number;
  /** Name shown in `CLIENT LIST`. */
  readonly connectionName?: string;
  /** TLS settings, used only with a `rediss://` or `rediss+cluster://` URL. */
  readonly tls?: { readonly ca?: string | undefined; readonly rejectUnauthorized: boolean };
}

/**
 * Creates a lazily connecting client with our scripts; ioredis must be loaded first
 * (`loadRedisClient`).
 *
 * Connection problems are remembered so that a failing command can say why (refused, timed out,
 * wrong password) and where (`host:port/db`), never with the password.
 */
export function connectRedis(options: RedisConnectOptions): {
  client: ScriptedRedis;
  lastError: () => Error | undefined;
} {
  let lastError: Error | undefined;
  const client = createRedisClient(options.url, options) as ScriptedRedis;
  // Without a listener ioredis reports connection errors as unhandled 'error' events.
  client.on('error', (error: Error) => {
    lastError = error;
  });
  client.on('ready', () => {
    lastError = undefined;
  });
  client.defineCommand('scReceive', { lua: RECEIVE_LUA });
  client.defineCommand('scPromote', { lua: PROMOTE_LUA });
  client.defineCommand('scRestoreOne', { lua: RESTORE_ONE_LUA });
  client.defineCommand('scDeadLetterOne', { lua: DEAD_LETTER_ONE_LUA });
  client.defineCommand('scReleaseMutex', { lua: RELEASE_MUTEX_LUA });
  client.defineCommand('scReplayOne', { lua: REPLAY_ONE_LUA });
  return { client, lastError: () => lastError };
}

/**
 * Wraps an ioredis failure in a {@link BrokerError} that names the endpoint and the cause.
 *
 * @param url - the broker URL (only host, port and database are shown)
 * @param action - what we were doing, e.g. `publish to events`
 * @param error - what ioredis threw
 * @param connectionError - the last connection error seen, when there was one
 */
export function redisFailure(
  url: string,
  action: string,
  error: unknown,
  connectionError?: Error,
): BrokerError {
  const cause = connectionError ?? error;
  const reason = explain(cause);
  return new BrokerError(`Redis at ${describeEndpoint(url)}: ${action} failed: ${reason}`, {
    cause: withoutCredentials(error),
  });
}

/**
 * ioredis puts the failed command on its reply errors (`error.command = { name, args }`); for
 * `AUTH` and `HELLO … AUTH user password` the arguments hold the password, which would then be
 * printed wherever the error is logged. The arguments of those two commands are masked.
 */
function withoutCredentials(error: unknown): unknown {
  const command = (error as { command?: { name?: unknown } } | null)?.command;
  if (error instanceof Error && command && /^(auth|hello)$/i.test(String(command.name))) {
    Object.assign(error, { command: { name: command.name, args: ['***'] } });
  }
  return error;
}

/**
 * True when Redis refused the credentials (`WRONGPASS`, or `ERR invalid password` before Redis 6)
 * or wanted some (`NOAUTH`): the broker then reads its secret anew (broker-secret.ts).
 */
export function isRedisAuthFailure(error: unknown): boolean {
  return error instanceof Error && /^(WRONGPASS |ERR invalid password|NOAUTH )/.test(error.message);
}

function explain(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED') return 'connection refused (is redis-server running?)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ETIMEDOUT') return 'connection timed out';
  // ioredis' Cluster when no seed node gives it a slot map (its node errors say no more).
  if (/^(Failed to refresh slots cache|None of startup nodes is available)/.test(error.message)) {
    return "no node of the cluster answered (are its nodes up, and the URL's host list right?)";
  }
  // A Redis error reply starts with its code word (`WRONGPASS …`, `NOAUTH …`, `ERR …`); the rest
  // may quote key names, so only the start is read.
  if (/^(WRONGPASS |ERR invalid password)/.test(error.message)) {
    return 'authentication failed (wrong user name or password)';
  }
  if (/^NOAUTH /.test(error.message)) return 'authentication required (no password given)';
  return error.message;
}
