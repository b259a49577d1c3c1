/**
 * Crash safety on Redis: a consumer process (`test/fixtures-app/crash-consumer.ts`) is killed
 * with SIGKILL in the middle of a queue; a fresh one restores what the dead one held once the
 * visibility timeout passes. Every message runs; the only ones that run twice are the ones the
 * dead process held, and their second run is marked redelivered.
 *
 * Runs on database 10 of the shared Redis, and on a three-master Redis Cluster the file starts
 * (`redis-cluster-3`; keys under `{celery}:`, all in one slot), whatever `BROKERS` says, as
 * before: a file left with no test fails. One queue per test; on the shared Redis only this
 * test's keys and `unacked` entries are removed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import {
  createRedisClient,
  loadRedisClient,
  type RedisClient,
} from '../../src/brokers/redis/redis-client.js';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import { decodeRedisMessage, decodeUnackedEntry } from '../../src/core/redis-codec.js';
import { createFixtureApp, type FixtureApp, type RunRecord } from '../fixtures-app/registry.js';
import { deleteQueueKeys, redisUrl } from '../helpers/redis.js';
import { type RedisCluster, startRedisCluster } from '../helpers/redis-cluster.js';

const CONSUMER_SCRIPT = path.resolve(import.meta.dirname, '../fixtures-app/crash-consumer.ts');
const MESSAGES = 200;
const VISIBILITY_TIMEOUT_S = 2;
/** The Redis deployments the crash runs on. */
const TARGETS = ['redis', 'redis-cluster-3'] as const;

// Set per target in its `beforeAll`: the targets run one after the other.
let url: string;
let redis: RedisClient;
let keys: RedisKeys;
let cluster: RedisCluster | undefined;
let queue: string;
let recordKey: string;
let children: ChildProcess[];
let broker: Broker;
let app: FixtureApp;

/** Connects to `kind`, starting the cluster first if it is one. */
async function openTarget(kind: (typeof TARGETS)[number]): Promise<void> {
  cluster = kind === 'redis-cluster-3' ? await startRedisCluster({ masters: 3 }) : undefined;
  url = cluster?.url ?? redisUrl(10);
  const config = parseBrokerConfig({ kind: 'redis', url });
  if (config.kind !== 'redis') throw new Error(`not a Redis config: ${config.kind}`);
  // The broker's key names, `{celery}:` prefixed on a cluster.
  keys = new RedisKeys(config.keyPrefix);
  await loadRedisClient();
  redis = createRedisClient(url);
}

async function closeTarget(): Promise<void> {
  await redis?.quit();
  await cluster?.stop();
}

beforeEach(() => {
  queue = `sc-crash-${randomUUID()}`;
  recordKey = `sc-crash-runs:${queue}`;
  children = [];
  app = createFixtureApp({ queue, record: () => undefined });
  broker = createBroker({ kind: 'redis', url }, { queues: app.registry.queues });
});

afterEach(async () => {
  await Promise.all(children.map((child) => stopChild(child, 'SIGKILL')));
  await broker.close();
  await deleteQueueKeys(redis, keys, [queue]);
  // A key of its own: on a cluster it is in another slot than the queue's, so a DEL apart.
  await redis.del(recordKey);
});

/** A consumer process and what it printed. */
interface Consumer {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  output(): string;
  exited(): boolean;
}

/** Starts a consumer process; it is killed in `afterEach` if the test has not stopped it. */
async function startConsumer(): Promise<Consumer> {
  const child = spawn(process.execPath, ['--import', 'tsx', CONSUMER_SCRIPT], {
    env: {
      ...process.env,
      SC_REDIS_URL: url,
      SC_QUEUE: queue,
      SC_RECORD_KEY: recordKey,
      SC_VISIBILITY_TIMEOUT: String(VISIBILITY_TIMEOUT_S),
      SC_CONCURRENCY: '10',
      SC_RESTORE_EVERY_MS: '250',
      SC_WAIT_MS: '250',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const consumer: Consumer = {
    child,
    pid: child.pid,
    output: () => output,
    exited: () => child.exitCode !== null || child.signalCode !== null,
  };
  const deadline = Date.now() + 20_000;
  while (!output.includes('ready ')) {
    if (consumer.exited()) expect.fail(`consumer exited before it was ready:\n${output}`);
    if (Date.now() > deadline) expect.fail(`consumer not ready after 20 s:\n${output}`);
    await sleep(20);
  }
  return consumer;
}

/** Sends `signal` to the child (by its pid) and waits for it to exit. */
async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

/** This queue's entries in kombu's shared `unacked` hash: delivery tag → task id. */
async function heldByQueue(): Promise<Record<string, string>> {
  const held: Record<string, string> = {};
  for (const [tag, value] of Object.entries(await redis.hgetall(keys.unacked))) {
    const entry = decodeUnackedEntry(value);
    if (entry?.routingKey !== queue) continue;
    const decoded = decodeRedisMessage(entry.envelope);
    held[tag] = decoded.ok ? decoded.message.id : '?';
  }
  return held;
}

/** When the earliest of `tags` was taken, unix ms (`unacked_index` scores are unix seconds). */
async function heldSince(tags: readonly string[]): Promise<number> {
  const scores = await Promise.all(tags.map((tag) => redis.zscore(keys.unackedIndex, tag)));
  return Math.min(...scores.map((score) => Number(score) * 1000));
}

async function readRuns(): Promise<RunRecord[]> {
  const lines = await redis.lrange(recordKey, 0, -1);
  return lines.map((line) => JSON.parse(line) as RunRecord);
}

describe.each(TARGETS)('a consumer killed mid-queue on %s', (kind) => {
  beforeAll(() => openTarget(kind));
  afterAll(closeTarget);

  it('loses no message, and re-runs only what it held, marked redelivered', async ({
    annotate,
  }) => {
    // Prepare
    // Runs of 2 to 74 ms: within a batch of 10, some finish long before the batch is settled.
    const messages = Array.from({ length: MESSAGES }, (_, index) =>
      app.doWork.createMessage({ args: [index], kwargs: { sleep_ms: 2 + (index % 10) * 8 } }),
    );
    const allIds = messages.map((message) => message.id).sort();
    await broker.publish(messages);
    const first = await startConsumer();
    // Not a multiple of the batch size: the kill lands while a batch is half done.
    const killAfter = 55;
    const deadline = Date.now() + 20_000;
    while ((await redis.llen(recordKey)) < killAfter) {
      if (first.exited()) expect.fail(`first consumer died by itself:\n${first.output()}`);
      if (Date.now() > deadline) expect.fail(`too few runs after 20 s:\n${first.output()}`);
      await sleep(5);
    }

    // Act: kill it mid-batch, then start a fresh consumer.
    await stopChild(first.child, 'SIGKILL');
    const killedAt = Date.now();
    const held = await heldByQueue();
    const inFlight = new Set(Object.values(held));
    const takenAt = await heldSince(Object.keys(held));
    const second = await startConsumer();
    const finished = Date.now() + 30_000;
    let runs = await readRuns();
    while (new Set(runs.map((run) => run.id)).size < MESSAGES && Date.now() < finished) {
      if (second.exited()) expect.fail(`second consumer died by itself:\n${second.output()}`);
      await sleep(100);
      runs = await readRuns();
    }
    await stopChild(second.child, 'SIGTERM');
    runs = await readRuns();

    // Assess: the kill happened mid-queue, with messages held.
    const beforeKill = runs.filter((run) => run.pid === first.pid);
    const afterKill = runs.filter((run) => run.pid === second.pid);
    expect(beforeKill.length + afterKill.length).toBe(runs.length);
    expect(beforeKill.length).toBeGreaterThanOrEqual(killAfter);
    expect(beforeKill.length).toBeLessThan(MESSAGES);
    expect(inFlight.size).toBeGreaterThan(0);
    // The prefetch: 4 × concurrency 10 (running, waiting for a slot, or being settled).
    expect(inFlight.size).toBeLessThanOrEqual(40);
    // Nothing lost.
    expect([...new Set(runs.map((run) => run.id))].sort()).toEqual(allIds);
    // Run twice: exactly the held messages that had run before the kill, and none more than twice.
    const counts = new Map<string, number>();
    for (const run of runs) counts.set(run.id, (counts.get(run.id) ?? 0) + 1);
    const twice = [...counts].filter(([, count]) => count > 1).map(([id]) => id);
    // A run recorded but not settled at the kill: rare now that each message is settled as soon
    // as it ends (the batch barrier made it the rule), so its absence is no failure.
    const ranAndHeld = beforeKill.filter((run) => inFlight.has(run.id)).map((run) => run.id);
    expect(twice.sort()).toEqual(ranAndHeld.sort());
    expect(Math.max(...counts.values())).toBe(ranAndHeld.length > 0 ? 2 : 1);
    // The fresh consumer got back exactly the held messages, flagged redelivered, once the
    // visibility timeout had passed; everything else it ran was a first delivery.
    const redelivered = afterKill.filter((run) => run.redelivered);
    expect(redelivered.map((run) => run.id).sort()).toEqual([...inFlight].sort());
    expect(afterKill.filter((run) => !run.redelivered && inFlight.has(run.id))).toEqual([]);
    expect(beforeKill.filter((run) => run.redelivered)).toEqual([]);
    for (const run of redelivered) {
      expect(run.ranAt).toBeGreaterThanOrEqual(takenAt + VISIBILITY_TIMEOUT_S * 1000);
    }
    expect(second.child.exitCode).toBe(0);
    expect(await heldByQueue()).toEqual({});
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, unacked: 0, delayed: 0 });
    const firstRedelivery = Math.min(...redelivered.map((run) => run.ranAt));
    const lastRun = Math.max(...afterKill.map((run) => run.ranAt));
    await annotate(
      `${beforeKill.length} ran before the kill, ${inFlight.size} held, ` +
        `${twice.length} ran twice; first redelivered run ${firstRedelivery - killedAt} ms ` +
        `after the kill (${firstRedelivery - takenAt} ms after it was taken); the fresh ` +
        `consumer ran ${afterKill.length}, the last ${lastRun - killedAt} ms after the kill`,
    );
  });
});
