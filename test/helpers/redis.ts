/**
 * Helpers for tests against real Redis: unique queue names, cleanup of exactly the keys a test
 * created, throw-away `redis-server` children (for settings the shared server must keep), and a
 * self-signed certificate for TLS.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type Cluster, Redis } from 'ioredis';
import type { BrokerLogger } from '../../src/brokers/broker.js';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { RedisBroker, type RedisBrokerOptions } from '../../src/brokers/redis/redis-broker.js';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import { createTaskMessage, type TaskCall, type TaskMessage } from '../../src/core/message.js';
import { decodeUnackedEntry } from '../../src/core/redis-codec.js';
import { redisEnvelope, type WireParts } from './wire.js';

/** The shared Redis of the project's machines. */
export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;

/** `redis://127.0.0.1:6379/<db>`. */
export function redisUrl(db: number): string {
  return `redis://${REDIS_HOST}:${REDIS_PORT}/${db}`;
}

/** A queue name no other test uses: `sc-test-<uuid>`. */
export function uniqueQueue(): string {
  return `sc-test-${randomUUID()}`;
}

/** Task name of the messages {@link taskMessage} builds. */
export const TEST_TASK = 'sc_test.do_work';

/** A message of {@link TEST_TASK} for `queue` with a unique argument; `call` overrides. */
export function taskMessage(queue: string, call: Partial<TaskCall> = {}): TaskMessage {
  return createTaskMessage({ task: TEST_TASK, queue, args: [randomUUID()], ...call });
}

/**
 * A Python-written envelope routed to `queue` with a unique delivery tag (so cleanup by queue
 * finds its `unacked` entry); `edit` may change the parsed envelope before it is serialised.
 */
export function pythonEnvelope(
  queue: string,
  parts: Partial<WireParts> = {},
  edit: (envelope: { properties: Record<string, unknown> }) => void = () => {},
): string {
  const envelope = JSON.parse(redisEnvelope({ body: '[[], {}, {}]', ...parts }));
  envelope.properties.delivery_tag = randomUUID();
  envelope.properties.delivery_info.routing_key = queue;
  edit(envelope);
  return JSON.stringify(envelope);
}

/**
 * Brokers, queues and key prefixes of one test file on its own database, and the cleanup of
 * exactly what they created: call {@link RedisBench.cleanup} after each test.
 */
export interface RedisBench {
  /** A client on the file's database, for looking at keys. */
  readonly admin: Redis;
  /** kombu's key names without a prefix. */
  readonly keys: RedisKeys;
  /** A broker on the file's database (unless `config.url` says otherwise), closed by cleanup. */
  openBroker(
    config?: Record<string, unknown>,
    options?: Omit<RedisBrokerOptions, 'config'>,
  ): RedisBroker;
  /** A unique queue name whose keys cleanup deletes. */
  newQueue(): string;
  /** A unique key prefix (`sc-test-<uuid>:`) whose keys cleanup deletes. */
  newPrefix(): string;
  /** Closes the brokers and deletes the keys of the queues and prefixes handed out. */
  cleanup(): Promise<void>;
  /** Closes the admin client. */
  close(): Promise<void>;
}

/** A {@link RedisBench} on database `db` of the shared Redis. */
export function redisBench(db: number): RedisBench {
  const admin = new Redis(redisUrl(db));
  const keys = new RedisKeys();
  const brokers: RedisBroker[] = [];
  const queues: string[] = [];
  const prefixes: string[] = [];
  return {
    admin,
    keys,
    openBroker(config = {}, options = {}) {
      const parsed = parseBrokerConfig({ kind: 'redis', url: redisUrl(db), ...config });
      if (parsed.kind !== 'redis') throw new Error(`not a Redis config: ${parsed.kind}`);
      const broker = new RedisBroker({ config: parsed, logger: recordingLogger(), ...options });
      brokers.push(broker);
      return broker;
    },
    newQueue() {
      const queue = uniqueQueue();
      queues.push(queue);
      return queue;
    },
    newPrefix() {
      const prefix = `${uniqueQueue()}:`;
      prefixes.push(prefix);
      return prefix;
    },
    async cleanup() {
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));
      await deleteQueueKeys(admin, keys, queues.splice(0));
      for (const prefix of prefixes.splice(0)) await deleteKeysWithPrefix(admin, prefix);
    },
    async close() {
      await admin.quit();
    },
  };
}

/** A logger that keeps what it is told. */
export function recordingLogger(): BrokerLogger & { readonly warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (message) => warnings.push(message) };
}

/**
 * A clock for the broker's `now` option that only moves when told to.
 *
 * @param start - unix ms @defaultValue the real time
 */
export function manualClock(start = Date.now()): { now: () => number; advance(ms: number): void } {
  let current = start;
  return {
    now: () => current,
    advance: (ms) => {
      current += ms;
    },
  };
}

/**
 * Deletes every key of `queues` (their four lists, binding set, delay zset, dead-letter list) and
 * their entries in the shared `unacked` hash and `unacked_index` zset. Nothing else is touched.
 *
 * @param deadLetterQueues - dead-letter queue names used besides `<queue>.dlq`
 */
export async function deleteQueueKeys(
  redis: Redis | Cluster,
  keys: RedisKeys,
  queues: readonly string[],
  deadLetterQueues: readonly string[] = [],
): Promise<void> {
  const names = queues.flatMap((queue) => [
    ...keys.queueLists(queue),
    keys.binding(queue).key,
    keys.delayed(queue),
    keys.deadLetter(`${queue}.dlq`),
    // The queue's name may itself have served as another queue's dead-letter queue.
    keys.deadLetter(queue),
  ]);
  names.push(...deadLetterQueues.map((name) => keys.deadLetter(name)));
  if (names.length > 0) await redis.del(...names);
  const tags = await unackedTagsOf(redis, keys, queues);
  if (tags.length > 0) {
    await redis.hdel(keys.unacked, ...tags);
    await redis.zrem(keys.unackedIndex, ...tags);
  }
}

/** The delivery tags of the `unacked` entries routed to `queues`. */
export async function unackedTagsOf(
  redis: Redis | Cluster,
  keys: RedisKeys,
  queues: readonly string[],
): Promise<string[]> {
  const tags: string[] = [];
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(keys.unacked, cursor, 'COUNT', 500);
    cursor = next;
    for (let index = 0; index + 1 < flat.length; index += 2) {
      const entry = decodeUnackedEntry(flat[index + 1] as string);
      if (entry && queues.includes(entry.routingKey)) tags.push(flat[index] as string);
    }
  } while (cursor !== '0');
  return tags;
}

/** Deletes every key that starts with `prefix` (a prefix unique to the test). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<void> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (found.length > 0) await redis.del(...found);
  } while (cursor !== '0');
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, REDIS_HOST, resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP port assigned');
  return address.port;
}

/** A `redis-server` child process of one test file. */
export interface ThrowawayRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>/0`, or `rediss://` when it only speaks TLS. */
  readonly url: string;
  /** Stops the child (the one this helper started, by its handle) and removes its directory. */
  stop(): Promise<void>;
}

/** Options of {@link startThrowawayRedis}. */
export interface ThrowawayRedisOptions {
  /** More `redis-server` arguments, e.g. `['--maxmemory-policy', 'allkeys-lru']`. */
  readonly args?: readonly string[];
  /** Serve TLS only, with this certificate. */
  readonly tls?: SelfSignedCertificate;
  /** Server executable, e.g. `valkey-server`. @defaultValue `'redis-server'` */
  readonly server?: string;
}

/**
 * Starts a `redis-server` that keeps nothing on disk, for settings the shared server must not be
 * given. Resolves once it accepts connections.
 */
export async function startThrowawayRedis(
  options: ThrowawayRedisOptions = {},
): Promise<ThrowawayRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'sc-redis-'));
  const listen = options.tls
    ? ['--port', '0', '--tls-port', String(port), ...tlsArgs(options.tls)]
    : ['--port', String(port)];
  const args = [
    ...listen,
    '--bind',
    REDIS_HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--dir',
    dir,
    ...(options.args ?? []),
  ];
  const child = spawn(options.server ?? 'redis-server', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await untilReady(child);
  const scheme = options.tls ? 'rediss' : 'redis';
  return {
    port,
    url: `${scheme}://${REDIS_HOST}:${port}/0`,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function tlsArgs(certificate: SelfSignedCertificate): string[] {
  return [
    '--tls-cert-file',
    certificate.certFile,
    '--tls-key-file',
    certificate.keyFile,
    '--tls-ca-cert-file',
    certificate.certFile,
    '--tls-auth-clients',
    'no',
  ];
}

/** Waits for the server's "Ready to accept connections" line; fails with its output if it exits. */
function untilReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`redis-server did not start within 10 s:\n${output}`));
    }, 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
}

/** A self-signed certificate for 127.0.0.1, in a temporary directory. */
export interface SelfSignedCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  /** The certificate, PEM text: the CA a client must trust. */
  readonly pem: string;
  /** Removes the directory. */
  remove(): Promise<void>;
}

/** Makes a one-day self-signed certificate for `127.0.0.1` with `openssl req -x509`. */
export async function makeSelfSignedCertificate(): Promise<SelfSignedCertificate> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sc-tls-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${REDIS_HOST}`,
    '-addext',
    `subjectAltName=IP:${REDIS_HOST}`,
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  return {
    certFile,
    keyFile,
    pem: await readFile(certFile, 'utf8'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
