/**
 * Celery's `result_extended` and `track_started` across the language boundary, against real
 * Celery 5.2.6 on a throw-away redis-server (broker and result backend): the metas our worker
 * stores have the keys, in the order, of those a Celery worker with the same settings stores;
 * Python's `AsyncResult` reads our extended fields and sees STARTED while our task runs; our
 * reader reads Celery's extended metas; a STARTED never overwrites a final state.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { RedisResultBackend } from '../../src/brokers/redis/redis-result-backend.js';
import { routeFor } from '../../src/core/canvas.js';
import type { TaskMessage } from '../../src/core/message.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { taskMetaKey } from '../../src/core/result-backend.js';
import { WORKER_HOSTNAME } from '../../src/core/result-meta.js';
import { defineTask } from '../../src/core/task.js';
import { createPublisher } from '../../src/producer/publisher.js';
import { PYTHON, startCeleryWorker, stopCeleryWorkers } from '../helpers/celery.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.js';
import { startLocalWorker } from '../helpers/worker.js';

/** Python's side: waits for a state, then prints what `AsyncResult` reads. */
const PYTHON_READER = `
import json, sys, time
from celery import Celery
spec = json.loads(sys.argv[1])
app = Celery('ext-client', backend=spec['url'])
app.conf.update(result_serializer='json', accept_content=['json'])
r = app.AsyncResult(spec['id'])
deadline = time.time() + 15
while r.state != spec['want'] and time.time() < deadline:
    time.sleep(0.05)
print(json.dumps({'state': r.state, 'result': r.result, 'name': r.name, 'args': r.args,
                  'kwargs': r.kwargs, 'worker': r.worker, 'retries': r.retries,
                  'queue': r.queue}))
`;

async function pythonReads(url: string, id: string, want: string) {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    ['-c', PYTHON_READER, JSON.stringify({ url, id, want })],
    { timeout: 30_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
}

function ourApp(queue: string): Registry {
  const add = defineTask({ name: 'ts.add', queue }, (_kwargs, ctx) => {
    const [x, y] = ctx.args as [number, number];
    return x + y;
  });
  const slow = defineTask({ name: 'ts.slow', queue, trackStarted: true }, async (_k, ctx) => {
    await new Promise((resolve) => setTimeout(resolve, (ctx.args[0] as number) * 1000));
    return ctx.args[0] as number;
  });
  return createRegistry({ tasks: [add, slow], queues: [{ name: queue }] });
}

describe('result_extended and track_started with real Celery 5.2.6', () => {
  let redis: ThrowawayRedis;
  let client: Redis;

  beforeAll(async () => {
    redis = await startThrowawayRedis();
    client = new Redis(redis.url);
  });

  afterAll(async () => {
    client.disconnect();
    await redis.stop();
  });

  /** The raw meta once its status is `want`. */
  async function rawMeta(id: string, want: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const text = await client.get(taskMetaKey(id));
      const meta = text === null ? null : (JSON.parse(text) as Record<string, unknown>);
      if (meta?.status === want) return meta;
      if (Date.now() > deadline) throw new Error(`${id}: no ${want} meta, last ${text}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  describe('our worker, with ?result_extended=true', () => {
    let queue: string;
    let broker: Broker;
    let backend: RedisResultBackend;
    let stop: () => Promise<void>;

    beforeEach(() => {
      queue = `sc-ext-ts-${randomUUID()}`;
      const registry = ourApp(queue);
      broker = createBroker(redis.url, { queues: registry.queues, logger: { warn: () => {} } });
      backend = new RedisResultBackend(`${redis.url}?result_extended=true`, {
        route: routeFor(registry),
      });
      stop = startLocalWorker(broker, registry, {
        queues: [queue],
        waitMs: 100,
        resultBackend: backend,
      });
    });

    afterEach(async () => {
      await stop();
      await broker.close();
      await backend.close();
    });

    it("stores Celery's extended fields, which Python's AsyncResult reads", async () => {
      // Act
      const id = await createPublisher(broker).sendTask('ts.add', {
        queue,
        args: [1, 2],
        kwargs: { note: 'x' },
      });
      const read = await pythonReads(redis.url, id, 'SUCCESS');

      // Assess
      expect(read).toEqual({
        state: 'SUCCESS',
        result: 3,
        name: 'ts.add',
        args: [1, 2],
        kwargs: { note: 'x' },
        worker: WORKER_HOSTNAME,
        retries: 0,
        queue,
      });
    });

    it('shows Python STARTED while our slow task runs, then SUCCESS', async () => {
      // Act
      const id = await createPublisher(broker).sendTask('ts.slow', { queue, args: [2] });
      const during = await pythonReads(redis.url, id, 'STARTED');
      const after = await pythonReads(redis.url, id, 'SUCCESS');

      // Assess
      expect(during).toMatchObject({
        state: 'STARTED',
        result: { pid: process.pid, hostname: WORKER_HOSTNAME },
        name: 'ts.slow',
      });
      expect(after).toMatchObject({ state: 'SUCCESS', result: 2 });
    });
  });

  describe('next to a Celery worker with result_extended', () => {
    let pyQueue: string;
    let tsQueue: string;
    let broker: Broker;
    let backend: RedisResultBackend;
    let stop: () => Promise<void>;

    beforeEach(async () => {
      pyQueue = `sc-ext-py-${randomUUID()}`;
      tsQueue = `sc-ext-ts-${randomUUID()}`;
      await startCeleryWorker({
        broker: redis.url,
        queue: pyQueue,
        include: ['extended_app'],
        resultBackend: redis.url,
      });
      const registry = ourApp(tsQueue);
      broker = createBroker(redis.url, { queues: registry.queues, logger: { warn: () => {} } });
      backend = new RedisResultBackend({ url: redis.url, extended: true, trackStarted: false });
      stop = startLocalWorker(broker, registry, {
        queues: [tsQueue],
        waitMs: 100,
        resultBackend: backend,
      });
    });

    afterEach(async () => {
      await stop();
      await stopCeleryWorkers();
      await broker.close();
      await backend.close();
    });

    it.each([
      ['SUCCESS', 'ext.add', 'ts.add', [4, 5]],
      ['STARTED', 'ext.slow', 'ts.slow', [1]],
    ])('writes a %s meta with the keys and values Celery writes', async (state, py, ts, args) => {
      // Prepare
      const publisher = createPublisher(broker);

      // Act
      const theirs = await publisher.sendTask(py, { queue: pyQueue, args, kwargs: { k: 1 } });
      const ours = await publisher.sendTask(ts, { queue: tsQueue, args, kwargs: { k: 1 } });
      const celeryMeta = await rawMeta(theirs, state);
      const ourMeta = await rawMeta(ours, state);

      // Assess
      expect(Object.keys(ourMeta)).toEqual(Object.keys(celeryMeta));
      const differ = new Set(['task_id', 'date_done', 'name', 'worker', 'queue', 'result']);
      const same = (meta: Record<string, unknown>) =>
        Object.entries(meta).filter(([key]) => !differ.has(key));
      expect(same(ourMeta)).toEqual(same(celeryMeta));
      // STARTED: {pid, hostname} of each worker; SUCCESS: the same sum.
      const shape = (result: unknown) =>
        typeof result === 'object' && result !== null ? Object.keys(result) : result;
      expect(shape(ourMeta.result)).toEqual(shape(celeryMeta.result));
      expect([ourMeta.name, ourMeta.queue, celeryMeta.name, celeryMeta.queue]).toEqual([
        ts,
        tsQueue,
        py,
        pyQueue,
      ]);
      expect(typeof ourMeta.date_done).toBe(typeof celeryMeta.date_done);
    });

    it("our reader reads a Celery worker's extended meta", async () => {
      // Act
      const id = await createPublisher(broker).sendTask('ext.add', {
        queue: pyQueue,
        args: [20, 22],
      });

      // Assess
      await expect(backend.asyncResult(id).get({ timeout: 15 })).resolves.toBe(42);
      expect(await rawMeta(id, 'SUCCESS')).toMatchObject({ name: 'ext.add', args: [20, 22] });
    });
  });

  describe('markStarted', () => {
    let backend: RedisResultBackend;
    const task = defineTask({ name: 'ts.started', queue: 'q' }, () => null);
    const message = (id: string): TaskMessage => task.createMessage({ id });

    beforeEach(() => {
      backend = new RedisResultBackend(redis.url);
    });

    afterEach(async () => {
      await backend.close();
    });

    it.each(['SUCCESS', 'FAILURE', 'REVOKED'])('never overwrites a stored %s', async (status) => {
      // Prepare
      const id = randomUUID();
      const final = { status, result: null, traceback: null, children: [], date_done: 'd' };
      await client.set(taskMetaKey(id), JSON.stringify({ ...final, task_id: id }));

      // Act
      await backend.markStarted([message(id)]);

      // Assess
      expect(await backend.getMeta(id)).toMatchObject({ status });
    });

    it('overwrites a RETRY, and stores nothing extended by default', async () => {
      // Prepare
      const id = randomUUID();
      const retry = {
        status: 'RETRY',
        result: null,
        traceback: null,
        children: [],
        date_done: null,
      };
      await client.set(taskMetaKey(id), JSON.stringify({ ...retry, task_id: id }));

      // Act
      await backend.markStarted([message(id)]);

      // Assess
      const stored = JSON.parse((await client.get(taskMetaKey(id))) ?? '{}');
      expect(stored).toEqual({
        status: 'STARTED',
        result: { pid: process.pid, hostname: WORKER_HOSTNAME },
        traceback: null,
        children: [],
        date_done: null,
        task_id: id,
      });
      expect(await client.ttl(taskMetaKey(id))).toBeGreaterThan(86_000);
    });
  });
});
