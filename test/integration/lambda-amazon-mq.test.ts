/**
 * The Amazon MQ dispatcher against the real RabbitMQ (a throw-away vhost), with the task
 * functions invoked in this process and the event source played by a helper that takes messages
 * off the queue, frames them as an `aws:rmq` event and acknowledges them once the dispatcher
 * returns. Retries and messages not due are re-published through kombu's delay levels and come
 * back; dead ones land in `<queue>.dlq` with `x-sc-dead-*` headers; all of it is stored before the
 * dispatcher returns.
 */
import { type Channel, type ChannelModel, connect } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { RmqEvent } from '../../src/brokers/rabbitmq/amazon-mq-event.js';
import { createRegistry } from '../../src/core/registry.js';
import { INVOKE_FAILURES_HEADER } from '../../src/core/settlement.js';
import { defineTask } from '../../src/core/task.js';
import { createAmazonMqDispatcher } from '../../src/lambda/amazon-mq-dispatcher.js';
import { createRuntime, type LambdaRuntime } from '../../src/lambda/runtime.js';
import {
  loadRmqEventFixture,
  rmqEvent,
  rmqEventMessageFrom,
  rmqEventMessageOf,
  takeRmqEvent,
} from '../helpers/amazon-mq-event.js';
import { RetryableError } from '../helpers/factories.js';
import { fakeContext, type InProcessInvokerOptions, inProcessInvoker } from '../helpers/lambda.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { uniqueQueue } from '../helpers/redis.js';

const FIXTURE_ID = '38d6a70d-5c49-4042-9a53-c113fce8f83e';

let vhost: TestVhost;
let connection: ChannelModel;
let channel: Channel;
const runtimes: LambdaRuntime[] = [];
const runs: { id: string; retries: number; args: unknown; kwargs: unknown }[] = [];

/** An app whose `sentry.tasks.do_work` lives on a queue of its own, and its dispatcher. */
function app(invoker: InProcessInvokerOptions = {}) {
  const queue = uniqueQueue();
  const doWork = defineTask(
    {
      name: 'sentry.tasks.do_work',
      queue,
      kwargs: z.looseObject({ fail: z.enum(['retry-once', 'retry-in-an-hour']).optional() }),
      retry: { on: [RetryableError] },
      defaultRetryDelay: 1,
    },
    (kwargs, ctx) => {
      runs.push({ id: ctx.id, retries: ctx.retries, args: ctx.args, kwargs });
      if (kwargs.fail === 'retry-once' && ctx.retries === 0) throw new RetryableError('busy');
      if (kwargs.fail === 'retry-in-an-hour') return ctx.retry({ countdown: 3_600 });
      return 'done';
    },
  );
  const registry = createRegistry({ tasks: [doWork], queues: [{ name: queue }] });
  const runtime = createRuntime({ registry, broker: { kind: 'rabbitmq', url: vhost.url } });
  runtimes.push(runtime);
  const client = inProcessInvoker(registry, { prefix: '', ...invoker });
  const dispatch = (event: RmqEvent) =>
    createAmazonMqDispatcher(runtime, { client })(event, fakeContext());
  return { queue, doWork, runtime, client, dispatch };
}

/** The event source's part: hands the next `count` messages of `queue` to `dispatch`, then acks. */
async function deliverFromQueue(
  queue: string,
  count: number,
  dispatch: (event: RmqEvent) => Promise<Record<string, number>>,
) {
  const taken = await takeRmqEvent(channel, queue, count);
  expect(taken.headers).toHaveLength(count);
  const counts = await dispatch(taken.event);
  taken.ack();
  return { counts, headers: taken.headers };
}

/** Messages in a queue right now. */
async function depth(queue: string): Promise<number> {
  return (await channel.checkQueue(queue)).messageCount;
}

/** The headers of every message in `<queue>.dlq`, left in place. */
async function deadLetterHeaders(queue: string): Promise<Record<string, unknown>[]> {
  const peek = await connection.createChannel();
  const headers = [];
  for (;;) {
    const message = await peek.get(`${queue}.dlq`, { noAck: false });
    if (!message) break;
    headers.push(message.properties.headers ?? {});
  }
  await peek.close();
  return headers;
}

beforeAll(async () => {
  vhost = await createTestVhost();
  connection = await connect(vhost.url);
  channel = await connection.createChannel();
});

afterEach(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.broker().close();
  runs.length = 0;
});

afterAll(async () => {
  await connection.close();
  await vhost.remove();
});

describe('the Amazon MQ dispatcher on RabbitMQ', () => {
  it("runs the fixture event's Celery message and stores nothing", async () => {
    // Prepare
    const { queue, runtime, dispatch } = app();
    const fixture = loadRmqEventFixture();
    const event = {
      ...fixture,
      rmqMessagesByQueue: { [`${queue}::/`]: Object.values(fixture.rmqMessagesByQueue)[0] ?? [] },
    };

    // Act
    const counts = await dispatch(event);

    // Assess
    expect(counts).toEqual({ succeeded: 1 });
    expect(await runtime.broker().stats(queue)).toMatchObject({ ready: 0, deadLettered: 0 });
    expect(runs).toEqual([
      {
        id: FIXTURE_ID,
        retries: 0,
        args: [1, 'two', { three: 3 }],
        kwargs: { user_id: 42, tags: ['a', 'b'] },
      },
    ]);
  });

  it.each([
    {
      what: 'a pickle message',
      body: "(dp0\nS'pickled'\np1\nI1\ns.",
      make: (body: string) =>
        rmqEventMessageFrom({
          body,
          headers: { task: 'sentry.tasks.do_work', id: 'pickled-1' },
          contentType: 'application/x-python-serialize',
          contentEncoding: 'binary',
        }),
      reason: 'invalid-message',
      task: 'sentry.tasks.do_work',
      id: 'pickled-1',
    },
    {
      what: 'a message of an unknown task',
      body: '[[], {}, {}]',
      make: (body: string) =>
        rmqEventMessageFrom({
          body,
          headers: { task: 'sentry.tasks.gone', id: 'gone-1', retries: 0 },
          contentType: 'application/json',
          contentEncoding: 'utf-8',
        }),
      reason: 'unknown-task',
      task: 'sentry.tasks.gone',
      id: 'gone-1',
    },
  ])(
    'stores $what in <queue>.dlq with x-sc-dead-* headers before returning',
    async ({ body, make, reason, task, id }) => {
      // Prepare
      const { queue, runtime, client, dispatch } = app();

      // Act
      await dispatch(rmqEvent({ [queue]: [make(body)] }));

      // Assess
      expect(client.calls).toEqual([]);
      expect(await depth(`${queue}.dlq`)).toBe(1);
      const [headers] = await deadLetterHeaders(queue);
      expect(headers).toMatchObject({
        task,
        id,
        'x-sc-dead-reason': reason,
        'x-sc-dead-task': task,
        'x-sc-dead-id': id,
        'x-sc-dead-queue': queue,
      });
      expect(headers?.['x-sc-dead-at']).toMatch(/^\d{4}-\d\d-\d\dT/);
      const [entry] = await runtime.broker().deadLetters(queue, 10);
      expect(entry).toMatchObject({ reason, task, id, queue, raw: body });
    },
  );

  it('re-publishes a retry through the delay levels; it comes back and runs again', async () => {
    // Prepare
    const { queue, doWork, runtime, dispatch } = app();
    const sent = doWork.createMessage({ kwargs: { fail: 'retry-once' } });

    // Act
    const first = await dispatch(rmqEvent({ [queue]: [rmqEventMessageOf(sent)] }));
    const parked = await runtime.broker().stats(queue);
    const second = await deliverFromQueue(queue, 1, dispatch);

    // Assess
    expect(first).toEqual({ retry: 1 });
    expect(parked).toMatchObject({ ready: 0, delayed: 1 });
    expect(second.counts).toEqual({ succeeded: 1 });
    expect(second.headers[0]).toMatchObject({ id: sent.id, retries: 1, parent_id: sent.id });
    expect(runs.map((run) => [run.id, run.retries])).toEqual([
      [sent.id, 0],
      [sent.id, 1],
    ]);
  });

  it('re-publishes a message not due yet without running it; it comes back at its eta', async () => {
    // Prepare
    const { queue, doWork, client, dispatch } = app();
    const eta = new Date(Date.now() + 1_500);
    const sent = doWork.createMessage({ eta });

    // Act
    const first = await dispatch(rmqEvent({ [queue]: [rmqEventMessageOf(sent)] }));
    const second = await deliverFromQueue(queue, 1, dispatch);

    // Assess
    expect(first).toEqual({ 'not-due': 1 });
    expect(second.counts).toEqual({ succeeded: 1 });
    expect(client.calls).toHaveLength(1);
    expect(client.calls[0]?.at).toBeGreaterThanOrEqual(eta.getTime());
    expect(runs.map((run) => [run.id, run.retries])).toEqual([[sent.id, 0]]);
  });

  it('re-publishes the messages of a failed invoke with their failure count; they come back', async () => {
    // Prepare
    let invokes = 0;
    const { queue, doWork, dispatch } = app({
      beforeInvoke: () => {
        invokes++;
        if (invokes === 1)
          throw Object.assign(new Error('Internal error.'), { name: 'ServiceException' });
      },
    });
    const sent = doWork.createMessage();

    // Act
    const first = await dispatch(rmqEvent({ [queue]: [rmqEventMessageOf(sent)] }));
    const second = await deliverFromQueue(queue, 1, dispatch);

    // Assess
    expect(first).toEqual({ 'invoke-failed': 1 });
    expect(second.headers[0]).toMatchObject({
      id: sent.id,
      retries: 0,
      [INVOKE_FAILURES_HEADER]: 1,
    });
    expect(second.counts).toEqual({ succeeded: 1 });
  });

  it('stores every settlement of a mixed batch before returning its counts', async () => {
    // Prepare
    const { queue, doWork, runtime, dispatch } = app();
    const event = rmqEvent({
      [queue]: [
        rmqEventMessageOf(doWork.createMessage()),
        rmqEventMessageOf(doWork.createMessage({ kwargs: { fail: 'retry-in-an-hour' } })),
        rmqEventMessageOf({ ...doWork.createMessage(), task: 'sentry.tasks.gone' }),
        rmqEventMessageFrom({ body: 'not json', contentType: 'application/json' }),
        rmqEventMessageOf(doWork.createMessage({ countdown: 3_600 })),
      ],
    });
    // The delay levels are shared by every queue of the vhost.
    const { delayed } = await runtime.broker().stats(queue);

    // Act
    const counts = await dispatch(event);

    // Assess
    expect(counts).toEqual({ succeeded: 1, retry: 1, dead: 1, invalid: 1, 'not-due': 1 });
    expect(await runtime.broker().stats(queue)).toMatchObject({
      ready: 0,
      delayed: delayed + 2,
      deadLettered: 2,
    });
  });
});
