/**
 * Proof against real Python Celery 5.2.6 on Redis, both directions and on a shared database:
 * `send.py` produces and our local worker consumes; our producer publishes and `worker.py` (a
 * real Celery worker) consumes; and each side restores what the other held when it died.
 *
 * Database 9, one queue per test; each test removes only its own keys (the `unacked` hash and
 * zset are shared per database, so only this queue's entries are removed from them).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { createRetryMessage } from '../../src/core/message.js';
import { decodeUnackedEntry } from '../../src/core/redis-codec.js';
import type { WorkerEvent } from '../../src/worker/local-worker.js';
import {
  createFixtureApp,
  DO_WORK,
  type FixtureApp,
  type RunRecord,
} from '../fixtures-app/registry.js';
import {
  type CeleryRecord,
  type CeleryRunRecord,
  celeryPidboxBinding,
  sendCeleryTasks,
  startCeleryWorker,
  stopCeleryWorkers,
} from '../helpers/celery.js';
import { runWorkerUntil } from '../helpers/worker.js';

const REDIS_URL = 'redis://127.0.0.1:6379/9';
const KEYS = new RedisKeys();

let redis: Redis;
let queue: string;
let brokers: Broker[];
let runs: RunRecord[];
let app: FixtureApp;

beforeAll(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await redis.quit();
});

beforeEach(() => {
  queue = `sc-interop-${randomUUID()}`;
  brokers = [];
  runs = [];
  app = createFixtureApp({ queue, record: (run) => void runs.push(run) });
});

afterEach(async () => {
  const hostnames = await stopCeleryWorkers();
  await Promise.all(brokers.map((broker) => broker.close()));
  await forgetQueue(hostnames);
});

/** A broker on database 9 that the test closes in `afterEach`. */
function newBroker(visibilityTimeout?: number): Broker {
  const broker = createBroker(
    { kind: 'redis', url: REDIS_URL, ...(visibilityTimeout ? { visibilityTimeout } : {}) },
    { queues: app.registry.queues, logger: { warn: () => undefined } },
  );
  brokers.push(broker);
  return broker;
}

/** Delivery tags of this queue's entries in kombu's shared `unacked` hash. */
async function unackedTags(): Promise<string[]> {
  const entries = await redis.hgetall(KEYS.unacked);
  return Object.entries(entries)
    .filter(([, value]) => decodeUnackedEntry(value)?.routingKey === queue)
    .map(([tag]) => tag);
}

/** Removes this test's keys, its `unacked` entries and the pidbox bindings of its workers. */
async function forgetQueue(hostnames: readonly string[]): Promise<void> {
  const { key: binding } = KEYS.binding(queue);
  const deadLetters = KEYS.deadLetter(`${queue}.dlq`);
  await redis.del(...KEYS.queueLists(queue), binding, KEYS.delayed(queue), deadLetters);
  const tags = await unackedTags();
  if (tags.length > 0) {
    await redis.hdel(KEYS.unacked, ...tags);
    await redis.zrem(KEYS.unackedIndex, ...tags);
  }
  for (const hostname of hostnames) {
    const { key, member } = celeryPidboxBinding(hostname);
    await redis.srem(key, member);
  }
}

/**
 * Runs our local worker on the queue until `done(events)` holds or `timeoutMs` passes, then
 * stops it.
 *
 * @returns every settled message, in settling order
 */
function consume(
  done: (events: readonly WorkerEvent[]) => boolean,
  options: { broker?: Broker; concurrency?: number; timeoutMs?: number } = {},
): Promise<WorkerEvent[]> {
  const { broker = newBroker(), ...limits } = options;
  return runWorkerUntil(broker, app.registry, {
    queue,
    done,
    describe: () => `the consumer; runs: ${JSON.stringify(runs)}`,
    ...limits,
  });
}

function runOf(id: string): RunRecord {
  const run = runs.find((candidate) => candidate.id === id);
  if (!run) expect.fail(`task ${id} did not run; runs: ${JSON.stringify(runs)}`);
  return run;
}

function outcomesOf(events: readonly WorkerEvent[], id: string): string[] {
  return events
    .filter((event) => event.delivery.result.ok && event.delivery.result.message.id === id)
    .map((event) => event.outcome.kind);
}

function runsIn(records: readonly CeleryRecord[]): CeleryRunRecord[] {
  return records.filter((record): record is CeleryRunRecord => record.event === 'run');
}

function celeryRunOf(records: readonly CeleryRecord[], id: string): CeleryRunRecord {
  const run = runsIn(records).find((candidate) => candidate.id === id);
  if (!run) expect.fail(`Celery did not run ${id}; records: ${JSON.stringify(records)}`);
  return run;
}

describe('Python Celery produces, our worker consumes', () => {
  it('runs a plain task sent by Python with its args, kwargs and identity', async () => {
    // Prepare
    const args = [1, 'two', { three: 3 }];
    const kwargs = { user_id: 42, tags: ['a', 'b'] };
    const [sent] = await sendCeleryTasks({ broker: REDIS_URL, queue, args, kwargs });
    if (!sent) expect.fail('send.py sent nothing');

    // Act
    const events = await consume(() => runs.length >= 1);

    // Assess
    expect(runs).toEqual([
      expect.objectContaining({
        id: sent.id,
        task: DO_WORK,
        args,
        kwargs,
        retries: 0,
        eta: null,
        expires: null,
        rootId: sent.id,
        parentId: null,
        redelivered: false,
      }),
    ]);
    expect(outcomesOf(events, sent.id)).toEqual(['succeeded']);
    const broker = newBroker();
    expect(await broker.stats(queue)).toEqual({
      queue,
      ready: 0,
      unacked: 0,
      delayed: 0,
      deadLettered: 0,
    });
  });

  it('holds Python countdown and eta tasks until their eta, then runs them once', async () => {
    // Prepare: the worker runs before anything is sent, so each message is received before its
    // eta however long a Python start takes on a loaded machine (it took over 2 s in one run).
    const consuming = consume(() => runs.length >= 2);
    const sendStart = Date.now();
    const [byCountdown] = await sendCeleryTasks({
      broker: REDIS_URL,
      queue,
      args: ['countdown'],
      countdown: 3,
    });
    const sendEnd = Date.now();
    const eta = new Date(Date.now() + 4_000);
    const [byEta] = await sendCeleryTasks({ broker: REDIS_URL, queue, args: ['eta'], eta });
    if (!byCountdown || !byEta) expect.fail('send.py sent nothing');

    // Act
    const events = await consuming;

    // Assess
    const countdownRun = runOf(byCountdown.id);
    const countdownEta = Date.parse(countdownRun.eta ?? '');
    expect(countdownEta).toBeGreaterThanOrEqual(sendStart + 3000);
    expect(countdownEta).toBeLessThanOrEqual(sendEnd + 3000);
    expect(countdownRun.ranAt).toBeGreaterThanOrEqual(countdownEta);
    const etaRun = runOf(byEta.id);
    expect(etaRun.eta).toBe(eta.toISOString());
    expect(etaRun.ranAt).toBeGreaterThanOrEqual(eta.getTime());
    expect(etaRun.args).toEqual(['eta']);
    // Received at once, parked in our delay set (not held in memory), run when due.
    expect(outcomesOf(events, byCountdown.id)).toEqual(['not-due', 'succeeded']);
    expect(outcomesOf(events, byEta.id)).toEqual(['not-due', 'succeeded']);
    expect(runs).toHaveLength(2);
  });

  it('dead-letters a Python task whose expires passed, with the reason expired', async () => {
    // Prepare
    const [expiring] = await sendCeleryTasks({
      broker: REDIS_URL,
      queue,
      args: ['too-late'],
      expires: 1,
    });
    const [fresh] = await sendCeleryTasks({
      broker: REDIS_URL,
      queue,
      args: ['in-time'],
      expires: 60,
    });
    if (!expiring || !fresh) expect.fail('send.py sent nothing');
    await sleep(1500);

    // Act
    const events = await consume((settled) => settled.length >= 2);

    // Assess
    expect(runs.map((run) => run.id)).toEqual([fresh.id]);
    expect(Date.parse(runOf(fresh.id).expires ?? '')).toBeGreaterThan(Date.now());
    expect(outcomesOf(events, expiring.id)).toEqual(['dead']);
    const broker = newBroker();
    const deadLetters = await broker.deadLetters(queue, 10);
    expect(deadLetters).toEqual([
      expect.objectContaining({ reason: 'expired', id: expiring.id, task: DO_WORK, queue }),
    ]);
  });

  it('runs Python priority-0 tasks before priority-9 ones, as kombu orders them', async () => {
    // Prepare
    const [low] = await sendCeleryTasks({ broker: REDIS_URL, queue, args: ['p9'], priority: 9 });
    const [high] = await sendCeleryTasks({ broker: REDIS_URL, queue, args: ['p0'], priority: 0 });
    if (!low || !high) expect.fail('send.py sent nothing');
    expect(await redis.llen(`${queue}\x06\x169`)).toBe(1);
    expect(await redis.llen(queue)).toBe(1);

    // Act
    await consume(() => runs.length >= 2, { concurrency: 1 });

    // Assess
    expect(runs.map((run) => run.args)).toEqual([['p0'], ['p9']]);
    expect(runs.map((run) => run.id)).toEqual([high.id, low.id]);
  });

  it('runs the retry message a real Celery worker published, as retry 1 of its task', async () => {
    // Prepare: the Python task raises once; Celery's Task.retry publishes the retry message,
    // and the warm shutdown hands back the worker's hold on it before it is due.
    const worker = await startCeleryWorker({ broker: REDIS_URL, queue, retryDelay: 3 });
    const kwargs = { interop_raise: 'retry', interop_raise_times: 1 };
    const [sent] = await sendCeleryTasks({ broker: REDIS_URL, queue, args: ['retry-me'], kwargs });
    if (!sent) expect.fail('send.py sent nothing');
    await worker.waitForRecords((records) =>
      records.some((record) => record.event === 'outcome' && record.state === 'RETRY'),
    );
    await worker.stop('SIGTERM');
    const pythonRuns = worker.runs();
    expect(pythonRuns.map((run) => run.retries)).toEqual([0]);
    const firstRunMs = (pythonRuns[0]?.recorded_at_unix ?? 0) * 1000;

    // Act
    await consume(() => runs.length >= 1);

    // Assess
    const retried = runOf(sent.id);
    expect(retried).toMatchObject({
      args: ['retry-me'],
      kwargs,
      retries: 1,
      parentId: sent.id,
      rootId: sent.id,
    });
    const eta = Date.parse(retried.eta ?? '');
    // Celery's eta is now + retry delay, taken just after the first run (microseconds, cut to ms).
    expect(eta).toBeGreaterThanOrEqual(Math.floor(firstRunMs) + 3000 - 1);
    expect(retried.ranAt).toBeGreaterThanOrEqual(eta);
    expect(runs).toHaveLength(1);
  });
});

describe('our producer publishes, a real Celery worker consumes', () => {
  it('has Celery run our plain, child, countdown and priority-9 tasks as sent', async () => {
    // Prepare
    const { doWork } = app;
    const low = doWork.createMessage({ args: ['p9'], priority: 9 });
    const plain = doWork.createMessage({ args: [1, 'two', { three: 3 }], kwargs: { user_id: 42 } });
    const child = doWork.createMessage({ args: ['child'], parentId: plain.id, rootId: plain.id });
    const later = doWork.createMessage({ args: ['later'], countdown: 2 });
    await newBroker().publish([low, plain, child, later]);

    // Act
    const worker = await startCeleryWorker({ broker: REDIS_URL, queue });
    const records = await worker.waitForRecords(
      (current) => current.filter((record) => record.event === 'outcome').length >= 4,
    );

    // Assess
    const outcomes = records.filter((record) => record.event === 'outcome');
    expect(outcomes.map((record) => record.state)).toEqual(Array(4).fill('SUCCESS'));
    expect(celeryRunOf(records, plain.id)).toMatchObject({
      task: DO_WORK,
      args: [1, 'two', { three: 3 }],
      kwargs: { user_id: 42 },
      retries: 0,
      eta: null,
      root_id: plain.id,
      parent_id: null,
      lang: 'ts',
      delivery_info: { exchange: '', routing_key: queue, priority: 0 },
    });
    expect(celeryRunOf(records, child.id)).toMatchObject({
      args: ['child'],
      root_id: plain.id,
      parent_id: plain.id,
    });
    expect(celeryRunOf(records, low.id).delivery_info.priority).toBe(9);
    const laterRun = celeryRunOf(records, later.id);
    expect(Date.parse(laterRun.eta ?? '')).toBe(later.eta?.getTime());
    expect(laterRun.recorded_at_unix * 1000).toBeGreaterThanOrEqual(later.eta?.getTime() ?? 0);
    // kombu drains priority 0 before 9: both step-0 messages ran before the priority-9 one.
    const order = runsIn(records).map((record) => record.id);
    expect(order.indexOf(plain.id)).toBeLessThan(order.indexOf(low.id));
    expect(order.indexOf(child.id)).toBeLessThan(order.indexOf(low.id));
  });

  it('has Celery run our retry message as retry 1 of its task, at its eta', async () => {
    // Prepare
    const original = app.doWork.createMessage({ args: ['retry-me'], kwargs: { attempt: 1 } });
    // A due time of x.999 s: read as 999 µs (Celery 5.2 takes fraction digits for microseconds),
    // it would run almost a second early.
    const dueAt = new Date(Math.ceil((Date.now() + 1000) / 1000) * 1000 + 999);
    const retry = createRetryMessage(original, dueAt);
    await newBroker().publish([retry]);

    // Act
    const worker = await startCeleryWorker({ broker: REDIS_URL, queue });
    const records = await worker.waitForRecords((current) =>
      current.some((record) => record.event === 'outcome'),
    );

    // Assess
    const run = celeryRunOf(records, original.id);
    expect(run).toMatchObject({
      args: ['retry-me'],
      kwargs: { attempt: 1 },
      retries: 1,
      root_id: original.id,
      parent_id: original.id,
    });
    expect(Date.parse(run.eta ?? '')).toBe(dueAt.getTime());
    expect(run.recorded_at_unix * 1000).toBeGreaterThanOrEqual(dueAt.getTime());
    expect(records.filter((record) => record.event === 'outcome')).toEqual([
      expect.objectContaining({ state: 'SUCCESS', id: original.id }),
    ]);
  });
});

describe('Python Celery and our worker share a database', () => {
  it('has a real Celery worker restore and run what our crashed consumer held', async () => {
    // Prepare: our consumer takes three messages and dies without settling them.
    const messages = [1, 2, 3].map((n) => app.doWork.createMessage({ args: [n] }));
    const crashing = newBroker();
    await crashing.publish(messages);
    const held = await crashing.receive(queue, { max: 10, waitMs: 1000 });
    expect(held).toHaveLength(3);
    await crashing.close();
    expect(await unackedTags()).toHaveLength(3);
    await sleep(1200);

    // Act: a Celery worker with a 1 s visibility timeout restores stale holds when it starts.
    const worker = await startCeleryWorker({ broker: REDIS_URL, queue, visibilityTimeout: 1 });
    const records = await worker.waitForRecords((current) => runsIn(current).length >= 3);
    await worker.stop('SIGTERM');

    // Assess
    const celeryRuns = runsIn(records);
    expect(celeryRuns.map((run) => run.id).sort()).toEqual(messages.map((m) => m.id).sort());
    expect(celeryRuns.map((run) => run.delivery_info.redelivered)).toEqual([true, true, true]);
    expect(celeryRuns.map((run) => run.args[0]).sort()).toEqual([1, 2, 3]);
    expect(await unackedTags()).toEqual([]);
    expect(await redis.llen(queue)).toBe(0);
  });

  it('restores and runs, marked redelivered, what a killed Celery worker held', async () => {
    // Prepare: a Celery worker fetches three eta messages and holds them in `unacked`.
    const worker = await startCeleryWorker({ broker: REDIS_URL, queue });
    const sentAt = Date.now();
    const sent = await sendCeleryTasks({
      broker: REDIS_URL,
      queue,
      args: ['held'],
      countdown: 2,
      count: 3,
    });
    const deadline = Date.now() + 10_000;
    while ((await unackedTags()).length < 3 && Date.now() < deadline) await sleep(50);
    expect(await unackedTags()).toHaveLength(3);
    await worker.stop('SIGKILL');
    const killedAt = Date.now();
    expect(worker.runs()).toEqual([]);
    // Past the eta and our 1 s visibility timeout.
    await sleep(Math.max(sentAt + 2000, killedAt + 1000) + 200 - Date.now());

    // Act
    const broker = newBroker(1);
    const restored = await broker.restoreStale?.();
    await consume(() => runs.length >= 3, { broker });

    // Assess
    expect(restored).toBe(3);
    expect(runs.map((run) => run.id).sort()).toEqual(sent.map((task) => task.id).sort());
    for (const run of runs) {
      expect(run).toMatchObject({ args: ['held'], retries: 0, redelivered: true });
      expect(run.ranAt).toBeGreaterThanOrEqual(Date.parse(run.eta ?? ''));
    }
    expect(await unackedTags()).toEqual([]);
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, unacked: 0, delayed: 0 });
  });
});
