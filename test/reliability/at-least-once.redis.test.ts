/**
 * At-least-once with late settlement, on Redis: 10 000 tasks; the long-lived worker (the
 * poller's loop, in a process of its own) is killed with SIGKILL at 5 random moments and a fresh
 * one is started each time. A message is settled only after its task ran, so a kill between the
 * two leaves it in kombu's `unacked`; the next worker restores it once the visibility timeout
 * (2 s here, to keep the run short) has passed, flagged redelivered.
 *
 * Every task must run at least once; the repeats must be exactly messages the killed workers
 * held, at most what they held, each flagged redelivered.
 *
 * A throw-away `redis-server` is the broker and keeps the execution log (the worker restores
 * every stale hold of its database, so the shared server is not used). Prints a one-line JSON
 * summary; `SC_RELIABILITY_SEED=<seed>` replays a run's kill moments.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { decodeRedisMessage, decodeUnackedEntry } from '../../src/core/redis-codec.js';
import { createFixtureApp } from '../fixtures-app/registry.js';
import { seededRandom } from '../helpers/random.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.js';
import { figuresOf, readExecutions, runSeed } from './helpers/execution-figures.js';
import { runWithKills } from './helpers/kill-loop.js';
import { killWorkers, type WorkerProcess } from './helpers/worker-process.js';

const TASKS = 10_000;
const KILLS = 5;
const CONCURRENCY = 10;
/** What a worker may hold at once: its prefetch, 4 × its concurrency (the default). */
const HOLD_BOUND = 4 * CONCURRENCY;
const VISIBILITY_TIMEOUT_S = 2;
const KEYS = new RedisKeys();

let server: ThrowawayRedis | undefined;
let admin: Redis | undefined;
let broker: Broker | undefined;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  server = await startThrowawayRedis();
  admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await killWorkers(workers);
  await broker?.close();
  await admin?.quit();
  await server?.stop();
});

/**
 * Ids of the messages routed to `queue` that `unacked` still holds, taken at or after `since`
 * (unix ms; `unacked_index` scores are the unix seconds of the receive).
 */
async function heldIds(redis: Redis, queue: string, since = 0): Promise<string[]> {
  const ids: string[] = [];
  const tags = await redis.zrangebyscore(KEYS.unackedIndex, since / 1000, '+inf');
  const values = tags.length > 0 ? await redis.hmget(KEYS.unacked, ...tags) : [];
  for (const value of values) {
    const entry = value === null ? null : decodeUnackedEntry(value);
    if (entry?.routingKey !== queue) continue;
    const decoded = decodeRedisMessage(entry.envelope);
    ids.push(decoded.ok ? decoded.message.id : `undecodable:${entry.envelope}`);
  }
  return ids;
}

describe('a long-lived worker on Redis, killed with SIGKILL at 5 random moments', () => {
  it('runs each of 10 000 tasks at least once; repeats are messages held at a kill, flagged redelivered', async ({
    annotate,
  }) => {
    // Prepare
    const redis = admin as Redis;
    const url = (server as ThrowawayRedis).url;
    const seed = runSeed();
    const queue = `sc-alo-${randomUUID()}`;
    const recordKey = `sc-alo-runs:${queue}`;
    const { registry, doWork } = createFixtureApp({ queue, record: () => undefined });
    broker = createBroker({ kind: 'redis', url }, { queues: registry.queues });
    // Runs of 0 to 4 ms: a batch of 10 is partly run, partly waiting, when a kill lands.
    const messages = Array.from({ length: TASKS }, (_, index) =>
      doWork.createMessage({ args: [index], kwargs: { sleep_ms: index % 5 } }),
    );
    for (let start = 0; start < TASKS; start += 500) {
      await broker.publish(messages.slice(start, start + 500));
    }
    const startedAt = Date.now();

    // Act
    const { kills, last } = await runWithKills({
      worker: {
        brokerUrl: url,
        queue,
        recordUrl: url,
        recordKey,
        visibilityTimeoutS: VISIBILITY_TIMEOUT_S,
        concurrency: CONCURRENCY,
      },
      recorder: redis,
      tasks: TASKS,
      kills: KILLS,
      random: seededRandom(seed),
      started: workers,
      heldAfterKill: (since) => heldIds(redis, queue, since),
      describeBroker: async () =>
        `ready ${await redis.llen(queue)}, unacked ${await redis.hlen(KEYS.unacked)}, ` +
        `unacked_mutex expires in ${await redis.pttl(KEYS.unackedMutex)} ms`,
    });
    const seconds = (Date.now() - startedAt) / 1000;

    // Assess
    const executions = await readExecutions(redis, recordKey);
    const figures = figuresOf(
      messages.map((message) => message.id),
      executions,
    );
    const heldAtKills = kills.map((kill) => kill.held ?? []);
    const held = new Set(heldAtKills.flat());
    const summary = {
      scenario: 'at-least-once',
      broker: 'redis',
      tasksSent: figures.sent,
      kills: kills.length,
      executed: figures.executed,
      unique: figures.unique,
      duplicates: figures.duplicates,
      lost: figures.lost,
      inFlightAtKills: heldAtKills.map((ids) => ids.length),
      inFlightBound: heldAtKills.reduce((sum, ids) => sum + ids.length, 0),
      redeliveredExecutions: executions.filter((execution) => execution.redelivered).length,
      maxRunsOfOneTask: figures.maxRuns,
      seed,
      seconds,
    };
    console.log(JSON.stringify(summary));
    await annotate(JSON.stringify(summary));
    // Every task ran; nothing else did.
    expect(figures.strangers).toEqual([]);
    expect(figures.lost).toBe(0);
    expect(figures.unique).toBe(TASKS);
    // The kills landed mid-run: every killed worker had run tasks, and held some when it died.
    expect(kills).toHaveLength(KILLS);
    for (const kill of kills) {
      expect(executions.some((execution) => execution.pid === kill.pid)).toBe(true);
      expect((kill.held ?? []).length).toBeLessThanOrEqual(HOLD_BOUND);
    }
    expect(held.size).toBeGreaterThan(0);
    // Repeats: only messages a killed worker held, no more of them than it held, each flagged.
    expect(figures.duplicatedIds.filter((id) => !held.has(id))).toEqual([]);
    expect(figures.duplicates).toBeLessThanOrEqual(summary.inFlightBound);
    expect(figures.unflaggedRepeats).toEqual([]);
    // Every hold came back: each id held at kill k ran again, redelivered, in a later worker.
    kills.forEach((kill, index) => {
      const later = new Set(workers.slice(index + 1).map((worker) => worker.pid));
      for (const id of kill.held ?? []) {
        const rerun = executions.find(
          (execution) => execution.id === id && execution.redelivered && later.has(execution.pid),
        );
        expect(rerun, `held at kill ${index + 1}: ${id}`).toBeDefined();
      }
    });
    // The last worker stopped cleanly and left nothing behind.
    expect(last.exitCode).toBe(0);
    expect(await heldIds(redis, queue)).toEqual([]);
    expect(await broker.stats(queue)).toMatchObject({
      ready: 0,
      unacked: 0,
      delayed: 0,
      deadLettered: 0,
    });
  });
});
