/**
 * The producer functions against real brokers: `POST /tasks/{name}` and the direct invoke put a
 * Celery message a consumer can read on real Redis (database 8 of 127.0.0.1:6379), and a broker
 * nobody listens for answers 503 instead of failing the invocation. `GET /results/{id}` reads
 * metas as Python Celery stores them, from a throw-away redis-server.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Delivery } from '../../src/brokers/broker.js';
import type { BrokerConfigInput } from '../../src/config/broker-config.js';
import type { TaskMessage } from '../../src/core/message.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import {
  createHttpProducerHandler,
  createInvokeProducerHandler,
} from '../../src/lambda/producer-handlers.js';
import { createRuntime, type LambdaRuntime } from '../../src/lambda/runtime.js';
import { expectDecoded } from '../helpers/decode.js';
import { fakeContext } from '../helpers/lambda.js';
import { httpApiEvent } from '../helpers/lambda-events.js';
import {
  redisBench,
  redisUrl,
  startThrowawayRedis,
  type ThrowawayRedis,
} from '../helpers/redis.js';

const DB = 8;
const bench = redisBench(DB);
const runtimes: LambdaRuntime[] = [];

function app(broker: BrokerConfigInput = { kind: 'redis', url: redisUrl(DB) }): {
  queue: string;
  registry: Registry;
  runtime: LambdaRuntime;
} {
  const queue = bench.newQueue();
  const save = defineTask(
    { name: 'it.save_event', queue, kwargs: z.object({ event_id: z.string().min(1) }) },
    () => null,
  );
  const registry = createRegistry({ tasks: [save], queues: [{ name: queue }] });
  const runtime = createRuntime({ registry, broker });
  runtimes.push(runtime);
  return { queue, registry, runtime };
}

/** `POST /tasks/{name}` as the HTTP API hands it to the function (the parts the handler reads). */
const post = (name: string, body: unknown) =>
  ({
    pathParameters: { name },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  }) as never;

/** The only message waiting in `queue`, as a consumer receives it (then settled). */
async function takeOnly(runtime: LambdaRuntime, queue: string): Promise<TaskMessage> {
  const deliveries = await runtime.broker().receive(queue, { max: 10, waitMs: 0 });
  expect(deliveries).toHaveLength(1);
  const [delivery] = deliveries as [Delivery];
  await runtime.broker().settle([{ delivery, settlement: { kind: 'done' } }]);
  return expectDecoded(delivery.result);
}

afterEach(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.broker().close();
  await bench.cleanup();
});
afterAll(() => bench.close());

describe('the producer functions on real Redis', () => {
  it('publish a message a consumer receives as the Celery call that was posted', async () => {
    // Prepare
    const { queue, runtime } = app();
    const handler = createHttpProducerHandler(runtime);

    // Act
    const response = await handler(
      post('it.save_event', { kwargs: { event_id: 'evt-1' }, priority: 0 }),
      fakeContext(),
    );

    // Assess
    expect(response.statusCode).toBe(202);
    const { id } = JSON.parse(response.body ?? '{}') as { id: string };
    expect(await takeOnly(runtime, queue)).toMatchObject({
      id,
      task: 'it.save_event',
      kwargs: { event_id: 'evt-1' },
      protocol: 2,
    });
  });

  it('publish a direct invoke with its countdown as the eta Celery workers read', async () => {
    // Prepare
    const { queue, runtime } = app();
    const handler = createInvokeProducerHandler(runtime);
    const before = Date.now();

    // Act
    const result = await handler(
      { task: 'it.save_event', kwargs: { event_id: 'evt-2' }, countdown: 600 },
      fakeContext(),
    );

    // Assess
    expect(result).toMatchObject({ status: 202, task: 'it.save_event' });
    const message = await takeOnly(runtime, queue);
    expect(message.id).toBe((result as { id: string }).id);
    expect(message.eta?.getTime()).toBeGreaterThanOrEqual(before + 600_000);
  });

  it('refuse a bad call without writing anything', async () => {
    // Prepare
    const { queue, runtime } = app();
    const handler = createHttpProducerHandler(runtime);

    // Act
    const response = await handler(post('it.save_event', { kwargs: {} }), fakeContext());

    // Assess
    expect(response.statusCode).toBe(400);
    expect(await runtime.broker().stats(queue)).toMatchObject({ ready: 0, delayed: 0 });
  });
});

describe.each([
  ['Redis', 'redis://127.0.0.1:1/0'],
  ['RabbitMQ', 'amqp://guest:guest@127.0.0.1:1/'],
])('the producer functions with %s unreachable', (_, url) => {
  it('answer 503 over HTTP, naming the broker', async () => {
    // Prepare
    const { runtime } = app(url);
    const handler = createHttpProducerHandler(runtime);

    // Act
    const response = await handler(
      post('it.save_event', { kwargs: { event_id: 'e' } }),
      fakeContext(),
    );

    // Assess
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body ?? '{}').error).toContain('127.0.0.1:1');
  });

  it('answer 503 to a direct invoke, and a later call on a reachable broker finds nothing left over', async () => {
    // Prepare
    const down = app(url);
    const up = createRuntime({
      registry: down.registry,
      broker: { kind: 'redis', url: redisUrl(DB) },
    });
    runtimes.push(up);

    // Act
    const result = await createInvokeProducerHandler(down.runtime)(
      { task: 'it.save_event', kwargs: { event_id: 'e' } },
      fakeContext(),
    );

    // Assess
    expect(result).toMatchObject({ status: 503 });
    expect(await up.broker().stats(down.queue)).toMatchObject({ ready: 0, unacked: 0, delayed: 0 });
  });
});

describe('the result route on a real result backend', () => {
  let server: ThrowawayRedis;
  let admin: Redis;
  let runtime: LambdaRuntime;

  /** `GET /results/{id}` through the handler, as the HTTP API hands it over. */
  const getResult = async (id: string) => {
    const handler = createHttpProducerHandler(runtime, { results: true });
    const event = httpApiEvent({
      method: 'GET',
      path: `/results/${id}`,
      routeKey: 'GET /results/{id}',
      pathParameters: { id },
    });
    const response = await handler(event, fakeContext());
    return { status: response.statusCode, body: JSON.parse(response.body ?? 'null') };
  };

  beforeAll(async () => {
    server = await startThrowawayRedis();
    admin = new Redis(server.url);
    runtime = createRuntime({
      registry: createRegistry({ tasks: [], queues: [] }),
      broker: { kind: 'redis', url: server.url },
      resultBackend: server.url,
    });
  });
  afterAll(async () => {
    await runtime.resultBackend?.()?.close();
    admin.disconnect();
    await server.stop();
  });

  it('answers a stored success with its value, and a failure without its traceback', async () => {
    // Prepare: the metas as Python Celery 5 writes them.
    const [ok, failed] = [randomUUID(), randomUUID()];
    await admin.set(
      `celery-task-meta-${ok}`,
      JSON.stringify({
        status: 'SUCCESS',
        result: { sum: 5 },
        traceback: null,
        children: [],
        date_done: '2026-01-01T00:00:00.000000',
        task_id: ok,
      }),
    );
    await admin.set(
      `celery-task-meta-${failed}`,
      JSON.stringify({
        status: 'FAILURE',
        result: { exc_type: 'KeyError', exc_message: ['user'], exc_module: 'builtins' },
        traceback: 'Traceback (most recent call last):\n  File "/srv/tasks.py", line 9',
        children: [],
        date_done: '2026-01-01T00:00:00.000000',
        task_id: failed,
      }),
    );

    // Act
    const success = await getResult(ok);
    const failure = await getResult(failed);

    // Assess
    expect(success).toEqual({
      status: 200,
      body: { id: ok, state: 'SUCCESS', result: { sum: 5 } },
    });
    expect(failure).toEqual({
      status: 200,
      body: {
        id: failed,
        state: 'FAILURE',
        result: { exc_type: 'KeyError', exc_message: ['user'] },
      },
    });
  });

  it('answers PENDING for an id nothing is stored for, and 400 for a key pattern', async () => {
    // Act
    const unknown = await getResult('never-sent');
    const pattern = await getResult('*');

    // Assess
    expect(unknown).toEqual({ status: 200, body: { id: 'never-sent', state: 'PENDING' } });
    expect(pattern.status).toBe(400);
  });
});
