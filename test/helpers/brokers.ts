/**
 * One factory per broker for the shared contract suite (`BROKERS=redis,redis-cluster,
 * redis-cluster-3,valkey,valkey-cluster-3,rabbitmq`, all by default; other suites take the `redis` and `rabbitmq` of
 * the list). Each gives a fresh broker on an isolated namespace, a way to push a raw message the
 * way a foreign producer would, and a way to make a consumer "die" holding messages. The
 * cluster and Valkey kinds run on servers of the test file's own (a one-node cluster holding all
 * slots, as ElastiCache Serverless presents itself; three masters; a Valkey node; three Valkey
 * masters), started on first use and stopped by {@link stopHarnessServers}.
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'amqplib';
import { Cluster, Redis } from 'ioredis';
import type { Broker } from '../../src/brokers/broker.js';
import { RabbitMqBroker } from '../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { RedisBroker } from '../../src/brokers/redis/redis-broker.js';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import { createTestVhost, type TestVhost } from './rabbitmq.js';
import {
  deleteQueueKeys,
  recordingLogger,
  redisUrl,
  startThrowawayRedis,
  uniqueQueue,
} from './redis.js';
import { startRedisCluster } from './redis-cluster.js';

/** A raw message as a foreign producer would write it. */
export interface RawMessage {
  readonly contentType: string;
  readonly body: string;
  readonly headers: Record<string, unknown>;
}

/** What the contract suite needs from a broker under test. */
export interface BrokerHarness {
  readonly queue: string;
  /** A new broker on the harness's namespace (several may exist at once: two consumers). */
  broker(): Broker;
  /** Publishes a raw message to the queue, bypassing our encoder. */
  publishRaw(message: RawMessage): Promise<void>;
  /**
   * Makes `broker` vanish holding whatever it received, then makes its holds available again
   * to `survivor`, as the broker does after a consumer dies (Redis: the visibility timeout
   * passes and a restore runs; RabbitMQ: the connection drops).
   */
  crash(broker: Broker, survivor: Broker): Promise<void>;
  /** Brings due delayed messages back (a no-op where the broker does it by itself). */
  promote(broker: Broker): Promise<void>;
  /** Deletes everything the harness created. */
  cleanup(): Promise<void>;
}

/** The broker kinds a harness exists for. */
export type HarnessKind =
  | 'redis'
  | 'redis-cluster'
  | 'redis-cluster-3'
  | 'valkey'
  | 'valkey-cluster-3'
  | 'rabbitmq';

const HARNESS_KINDS: readonly HarnessKind[] = [
  'redis',
  'redis-cluster',
  'redis-cluster-3',
  'valkey',
  'valkey-cluster-3',
  'rabbitmq',
];

const LISTED = (process.env.BROKERS ?? HARNESS_KINDS.join(','))
  .split(',')
  .map((name) => name.trim());

/**
 * Whether `valkey-server` is on the PATH (Debian's bookworm-backports package, which .ci/run
 * installs). Without it the Valkey kinds are skipped, and say why, rather than fail a developer's
 * `npm test` over a server they never installed.
 */
export const VALKEY_INSTALLED = spawnSync('valkey-server', ['--version']).status === 0;

/** Why `kind` cannot run on this machine (a server not installed), or undefined. */
export function harnessSkip(kind: HarnessKind): string | undefined {
  if (!kind.startsWith('valkey') || VALKEY_INSTALLED) return undefined;
  return 'valkey-server is not installed: apt-get install -t bookworm-backports valkey-server';
}

/** The brokers to run the contract suite on: every kind `BROKERS` lists. */
export const HARNESSES = HARNESS_KINDS.filter((kind) => LISTED.includes(kind));

/** The brokers other suites run on: the `redis` and `rabbitmq` of `BROKERS`. */
export const BROKERS = HARNESSES.filter(
  (name): name is 'redis' | 'rabbitmq' => name === 'redis' || name === 'rabbitmq',
);

/** A harness for `kind`. */
export async function createHarness(kind: HarnessKind): Promise<BrokerHarness> {
  if (kind === 'rabbitmq') return rabbitHarness();
  if (kind === 'redis') {
    return redisHarness(redisUrl(CONTRACT_DB), () => new Redis(redisUrl(CONTRACT_DB)));
  }
  const server = await harnessServer(kind);
  const nodes = server.nodes;
  if (!nodes) return redisHarness(server.url, () => new Redis(server.url));
  return redisHarness(server.url, () => new Cluster(nodes.map((node) => ({ ...node }))));
}

/** A server (or cluster) of the file's own: its URL, its nodes when a cluster. */
interface HarnessServer {
  readonly url: string;
  readonly nodes?: readonly { readonly host: string; readonly port: number }[];
  stop(): Promise<void>;
}

const SERVERS = new Map<HarnessKind, Promise<HarnessServer>>();

function harnessServer(kind: Exclude<HarnessKind, 'redis' | 'rabbitmq'>): Promise<HarnessServer> {
  let server = SERVERS.get(kind);
  if (!server) {
    server =
      kind === 'valkey'
        ? startThrowawayRedis({ server: 'valkey-server' })
        : startRedisCluster({
            masters: kind === 'redis-cluster' ? 1 : 3,
            ...(kind === 'valkey-cluster-3' ? { server: 'valkey-server' } : {}),
          });
    SERVERS.set(kind, server);
  }
  return server;
}

/** Stops the servers and clusters the harnesses of this file started (call it in `afterAll`). */
export async function stopHarnessServers(): Promise<void> {
  const started = [...SERVERS.values()];
  SERVERS.clear();
  for (const server of started) await (await server).stop();
}

const CONTRACT_DB = 14;

async function redisHarness(
  url: string,
  connectAdmin: () => Redis | Cluster,
): Promise<BrokerHarness> {
  const queue = uniqueQueue();
  const admin = connectAdmin();
  // Real time plus a jump, so a crash test can let the visibility timeout pass at once.
  let skippedMs = 0;
  const brokers: RedisBroker[] = [];
  const config = parseBrokerConfig({ kind: 'redis', url, visibilityTimeout: 60 });
  if (config.kind !== 'redis') throw new Error('unreachable');
  const make = () => {
    const broker = new RedisBroker({
      config,
      logger: recordingLogger(),
      now: () => Date.now() + skippedMs,
    });
    brokers.push(broker);
    return broker;
  };
  return {
    queue,
    broker: make,
    async publishRaw(message) {
      const envelope = JSON.stringify({
        body: Buffer.from(message.body).toString('base64'),
        'content-encoding': 'utf-8',
        'content-type': message.contentType,
        headers: message.headers,
        properties: {
          delivery_tag: crypto.randomUUID(),
          delivery_info: { exchange: '', routing_key: queue },
          body_encoding: 'base64',
          priority: 0,
        },
      });
      await admin.lpush(config.keyPrefix + queue, envelope);
    },
    async crash(broker, survivor) {
      await broker.close();
      skippedMs += 61_000;
      await survivor.restoreStale?.();
    },
    async promote(broker) {
      await broker.promoteDue?.(queue);
    },
    async cleanup() {
      for (const broker of brokers) await broker.close();
      await deleteQueueKeys(admin, (brokers[0] ?? make()).keys, [queue]);
      await admin.quit();
    },
  };
}

async function rabbitHarness(): Promise<BrokerHarness> {
  const vhost: TestVhost = await createTestVhost();
  const queue = uniqueQueue();
  const brokers: RabbitMqBroker[] = [];
  const config = parseBrokerConfig({ kind: 'rabbitmq', url: vhost.url });
  if (config.kind !== 'rabbitmq') throw new Error('unreachable');
  return {
    queue,
    broker() {
      const broker = new RabbitMqBroker({ config, logger: recordingLogger() });
      brokers.push(broker);
      return broker;
    },
    async publishRaw(message) {
      const connection = await connect(vhost.url);
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue(queue, { durable: true });
      channel.publish('', queue, Buffer.from(message.body), {
        contentType: message.contentType,
        contentEncoding: 'utf-8',
        headers: message.headers,
        deliveryMode: 2,
      });
      await channel.waitForConfirms();
      await connection.close();
    },
    async crash(broker) {
      // Closing the connection without acks is what RabbitMQ sees when a consumer dies.
      await broker.close();
    },
    async promote() {
      // Delay levels dead-letter back into the queue by themselves.
    },
    async cleanup() {
      for (const broker of brokers) await broker.close();
      await vhost.remove();
    },
  };
}

/** A broker of a test file's own: a throw-away redis-server, or a throw-away vhost. */
export interface TestBroker {
  readonly url: string;
  /** Stops the server, or removes the vhost. */
  stop(): Promise<void>;
}

/** Starts a {@link TestBroker} of `kind`; `label` names the vhost. */
export async function startTestBroker(
  kind: 'redis' | 'rabbitmq',
  label: string,
): Promise<TestBroker> {
  if (kind === 'rabbitmq') {
    const vhost = await createTestVhost(label);
    return { url: vhost.url, stop: () => vhost.remove() };
  }
  const redis = await startThrowawayRedis();
  return { url: redis.url, stop: () => redis.stop() };
}
