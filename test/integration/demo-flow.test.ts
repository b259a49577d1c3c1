/**
 * The demo service end to end, every function invoked in this process: `POST /events` answers
 * 202 at once; the Redis poller (or, on RabbitMQ, the Amazon MQ dispatcher fed by a stand-in for
 * the event source) runs `ingest.save_event` in its task function; `GET /events/{id}` shows the
 * event saved. A transient store error is retried with its backoff, a bug is dead-lettered, and
 * the cron function publishes `ingest.cleanup` once per tick.
 *
 * Store and broker: database 7 of the local Redis (`STORE_URL`, `BROKER_URL`), set before the
 * demo is imported because `src/demo/tasks.ts` reads `STORE_URL` at import time. Only the keys
 * this file creates are deleted: the `events` queue of database 7, its events, its lock keys.
 */
import { randomUUID } from 'node:crypto';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAmazonMqDispatcher } from '../../src/lambda/amazon-mq-dispatcher.js';
import { createCronHandler, redisTickLock } from '../../src/lambda/cron-handler.js';
import { createPollerHandler } from '../../src/lambda/poller-handler.js';
import { createRuntime, type LambdaRuntime } from '../../src/lambda/runtime.js';
import { takeRmqEvent } from '../helpers/amazon-mq-event.js';
import { sendCeleryTasks } from '../helpers/celery.js';
import { fakeContext, type InvokeRecord, inProcessInvoker } from '../helpers/lambda.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { deleteQueueKeys, redisBench, redisUrl } from '../helpers/redis.js';

const DB = 7;
vi.stubEnv('STORE_URL', redisUrl(DB));
vi.stubEnv('BROKER_URL', redisUrl(DB));
vi.stubEnv('FUNCTION_PREFIX', 'demo-test-');
const { registry, runtime } = await import('../../src/demo/app.js');
const { EVENTS_QUEUE, store } = await import('../../src/demo/tasks.js');
const { createEventsApi } = await import('../../src/demo/events-api.js');

const bench = redisBench(DB);
const eventIds: string[] = [];
const lockKeys: string[] = [];

/** The in-process task functions, named as deployed (`demo-test-task-ingest-save_event`, …). */
const invoker = inProcessInvoker(registry);

/** Calls the events API as the HTTP API would. */
async function api(
  method: 'GET' | 'POST',
  options: { id?: string; body?: unknown } = {},
  on: LambdaRuntime = runtime,
) {
  const event = {
    requestContext: { http: { method } },
    ...(options.id ? { pathParameters: { id: options.id } } : {}),
    ...(options.body === undefined
      ? {}
      : { body: JSON.stringify(options.body), isBase64Encoded: false }),
  } as unknown as APIGatewayProxyEventV2;
  const response = (await createEventsApi(on, store)(
    event,
    fakeContext(),
  )) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: JSON.parse(response.body ?? 'null') };
}

/** Posts an event; returns its id and the id of the task that saves it. */
async function postEvent(payload: unknown, on: LambdaRuntime = runtime) {
  const { status, body } = await api('POST', { body: payload }, on);
  expect(status).toBe(202);
  eventIds.push(body.id);
  return body as { id: string; task_id: string };
}

/** Runs the poller, invocation after invocation (about 1.5 s each), until `done()` or 20 s. */
async function pollUntil(done: () => Promise<boolean>): Promise<void> {
  const poller = createPollerHandler(runtime, {
    stopTakingAtMs: 1_000,
    client: invoker,
    relay: false,
  });
  const deadline = Date.now() + 20_000;
  do {
    await poller({}, fakeContext({ remainingMs: 2_500 }));
  } while (!(await done()) && Date.now() < deadline);
}

const savedState = async (id: string) => (await api('GET', { id })).body;
const isSaved = (id: string) => async () => (await savedState(id))?.status === 'saved';
const callsFor = (taskId: string): InvokeRecord[] =>
  invoker.calls.filter((call) => call.ids.includes(taskId));

afterAll(async () => {
  await runtime.broker().close();
  await deleteQueueKeys(bench.admin, bench.keys, [EVENTS_QUEUE]);
  const keys = [...eventIds.map((id) => `demo:event:${id}`), ...lockKeys];
  if (keys.length > 0) await bench.admin.del(...keys);
  await store.close();
  await bench.close();
  vi.unstubAllEnvs();
});

describe('the demo on Redis', () => {
  it('answers 202 at once, saves the event in the background and shows it saved', async () => {
    // Prepare
    const { id, task_id } = await postEvent({ kind: 'signup', user: 42 });
    const pending = await savedState(id);

    // Act
    await pollUntil(isSaved(id));

    // Assess
    expect(pending).toMatchObject({ id, status: 'pending', attempts: 0 });
    expect(await savedState(id)).toMatchObject({
      id,
      status: 'saved',
      payload: { kind: 'signup', user: 42 },
      attempts: 1,
    });
    expect(callsFor(task_id).map((call) => call.functionName)).toEqual([
      'demo-test-task-ingest-save_event',
    ]);
  });

  it('retries a transient store error with its backoff until the event is saved', async () => {
    // Prepare
    const { id, task_id } = await postEvent({ simulate: 'transient', times: 2 });

    // Act
    await pollUntil(isSaved(id));

    // Assess
    expect(await savedState(id)).toMatchObject({ status: 'saved', attempts: 3 });
    const calls = callsFor(task_id);
    expect(calls.map((call) => call.retries)).toEqual([[0], [1], [2]]);
    expect(calls.map((call) => call.outcomes?.[0]?.kind)).toEqual(['retry', 'retry', 'succeeded']);
    for (const [index, call] of calls.slice(0, 2).entries()) {
      const retry = call.outcomes?.[0] as { dueAt: string; errorType: string };
      expect(retry.errorType).toBe('StoreUnavailableError');
      // Backoff factor 1 s with full jitter: retry n + 1 is due within 2^n s of run n's end
      // (`call.at` is its start; the run itself takes milliseconds, hence the slack).
      const delay = Date.parse(retry.dueAt) - call.at;
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(1_000 * 2 ** index + 500);
      expect(calls[index + 1]?.at).toBeGreaterThanOrEqual(Date.parse(retry.dueAt));
    }
  });

  it('dead-letters the event whose task has a bug, as excluded, after one attempt', async () => {
    // Prepare
    const { id, task_id } = await postEvent({ simulate: 'bug' });
    const deadFor = async () =>
      (await runtime.broker().deadLetters(EVENTS_QUEUE, 50)).find((entry) => entry.id === task_id);

    // Act
    await pollUntil(async () => (await deadFor()) !== undefined);

    // Assess
    expect(await deadFor()).toMatchObject({
      reason: 'excluded',
      task: 'ingest.save_event',
      retries: 0,
      errorType: 'TypeError',
      queue: EVENTS_QUEUE,
    });
    expect(await savedState(id)).toMatchObject({ status: 'pending', attempts: 1 });
  });

  it('saves an event whose task Python Celery sent with send_task', async () => {
    // Prepare: the event is stored as the API would, the task is sent by real Celery.
    const id = await store.create({ kind: 'from-python' });
    eventIds.push(id);
    const [sent] = await sendCeleryTasks({
      broker: redisUrl(DB),
      queue: EVENTS_QUEUE,
      task: 'ingest.save_event',
      kwargs: { event_id: id },
    });

    // Act
    await pollUntil(isSaved(id));

    // Assess
    expect(await savedState(id)).toMatchObject({ status: 'saved', attempts: 1 });
    expect(callsFor(sent?.id ?? '').map((call) => call.functionName)).toEqual([
      'demo-test-task-ingest-save_event',
    ]);
  });

  it('answers 404 for an event it does not know', async () => {
    // Act
    const { status, body } = await api('GET', { id: 'no-such-event' });

    // Assess
    expect(status).toBe(404);
    expect(body).toEqual({ error: 'no event no-such-event' });
  });

  it('publishes ingest.cleanup once per tick, and the poller runs it', async () => {
    // Prepare
    const minute = new Date(Date.UTC(2001, 0, 1) + Math.floor(Math.random() * 5e6) * 60_000);
    lockKeys.push(`_sc.cron.ingest.cleanup.${minute.toISOString()}`);
    const trigger = () =>
      createCronHandler(runtime, 'ingest.cleanup', { lock: redisTickLock(redisUrl(DB)) })(
        { time: minute.toISOString() },
        fakeContext(),
      );

    // Act
    const results = await Promise.all([trigger(), trigger()]);
    const published = results.find((result) => result.published);
    const taskId = published?.published ? published.id : '';
    await pollUntil(async () => callsFor(taskId).length > 0);

    // Assess
    expect(results.map((result) => result.published).sort()).toEqual([false, true]);
    expect(callsFor(taskId).map((call) => [call.functionName, call.outcomes?.[0]?.kind])).toEqual([
      ['demo-test-task-ingest-cleanup', 'succeeded'],
    ]);
  });
});

describe('the demo on RabbitMQ', () => {
  let vhost: TestVhost;
  let rabbit: LambdaRuntime;
  let connection: ChannelModel;
  let channel: Channel;

  beforeAll(async () => {
    vhost = await createTestVhost();
    rabbit = createRuntime({ registry, broker: vhost.url });
    connection = await connect(vhost.url);
    channel = await connection.createChannel();
  });

  afterAll(async () => {
    await connection.close();
    await rabbit.broker().close();
    await vhost.remove();
  });

  it('saves a posted event through the Amazon MQ dispatcher and shows it saved', async () => {
    // Prepare
    const dispatcher = createAmazonMqDispatcher(rabbit, { client: invoker });
    const { id, task_id } = await postEvent({ kind: 'order', ref: randomUUID() }, rabbit);

    // Act
    const taken = await takeRmqEvent(channel, EVENTS_QUEUE, 1);
    const counts = await dispatcher(taken.event, fakeContext());
    taken.ack();

    // Assess
    expect(counts).toEqual({ succeeded: 1 });
    expect(taken.headers[0]).toMatchObject({ task: 'ingest.save_event', id: task_id });
    expect(await savedState(id)).toMatchObject({ status: 'saved', attempts: 1 });
    expect(await rabbit.broker().stats(EVENTS_QUEUE)).toMatchObject({ ready: 0, deadLettered: 0 });
  });
});
