/**
 * ioredis connections made from a broker URL, with errors a person can act on and no secret in
 * them. Commands fail fast when Redis is down (a producer answers 503 rather than hanging).
 */
import { describeEndpoint } from '../../config/broker-config.js';
import { isRedisClusterUrl, isTlsRedisUrl } from '../../config/redis-url.js';
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
  // A cluster tells a node's refusal of the password only as 'node error' while it stays ready
  // (one node's connection was dropped and made anew). Every node has the same password: told as
  // 'error', as a single node tells it, so the failure is explained and a broker secret reread.
  client.on('node error', (error: Error) => {
    if (isRedisAuthFailure(error)) client.emit('error', error);
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
  const reason = explain(cause, url);
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
 * or wanted some (`NOAUTH`), on a single node or on every node a cluster client tried: the
 * broker then reads its secret anew (broker-secret.ts).
 */
export function isRedisAuthFailure(error: unknown): boolean {
  const refusal = nodeErrorOf(error);
  return (
    refusal instanceof Error && /^(WRONGPASS |ERR invalid password|NOAUTH )/.test(refusal.message)
  );
}

/**
 * What the last node said when ioredis' Cluster found no node to give it a slot map: its
 * `Failed to refresh slots cache.` carries that reply (a `WRONGPASS`…) as `lastNodeError`, and
 * only the reply says why. Any other error is returned as it is.
 */
function nodeErrorOf(error: unknown): unknown {
  const last = (error as { lastNodeError?: unknown } | null | undefined)?.lastNodeError;
  return last instanceof Error ? last : error;
}

function explain(error: unknown, url: string): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED') return 'connection refused (is redis-server running?)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ETIMEDOUT') return 'connection timed out';
  // A MULTI Redis refused command by command: EXEC says only that it discarded the transaction;
  // ioredis keeps the refusals (an OOM, a CLUSTERDOWN) on it, and the first says why.
  const [refusal] = (error as { previousErrors?: unknown[] }).previousErrors ?? [];
  if (/^EXECABORT /.test(error.message) && refusal instanceof Error) {
    return `${explain(refusal, url)} (the transaction was discarded)`;
  }
  // ioredis' Cluster when no seed node gives it a slot map. A node that replied (a refusal of the
  // password) says why; a connection that closed says nothing more, not even a TLS failure's
  // reason (ioredis drops the errors of the connection it asks on).
  if (/^(Failed to refresh slots cache|None of startup nodes is available)/.test(error.message)) {
    const reply = nodeErrorOf(error);
    if (reply !== error && (reply as Error).name === 'ReplyError') return explain(reply, url);
    const trust = isTlsRedisUrl(url) ? ', and their TLS certificate trusted (tls.ca)' : '';
    return `no node of the cluster answered (are its nodes up, the URL's host list right${trust}?)`;
  }
  // A cluster command whose node went away: ioredis sends it to another master, which sends it
  // back (MOVED), until the redirections run out; it says only that a connection closed, or
  // what the last node replied (a MOVED to the missing node, a TRYAGAIN while a slot moves).
  if (isRedisClusterUrl(url)) {
    const gaveUp = /^Too many Cluster redirections/.test(error.message);
    if (gaveUp || error.message === 'Connection is closed.') {
      const detail = gaveUp ? `: ${error.message}` : '';
      return `the cluster did not serve these keys (is the master of their slot down, or the slot moving?)${detail}`;
    }
  }
  // A Redis error reply starts with its code word (`WRONGPASS …`, `NOAUTH …`, `ERR …`); the rest
  // may quote key names, so only the start is read.
  if (/^(WRONGPASS |ERR invalid password)/.test(error.message)) {
    return 'authentication failed (wrong user name or password)';
  }
  if (/^NOAUTH /.test(error.message)) return 'authentication required (no password given)';
  return error.message;
}
