import { describe, expect, it } from 'vitest';
import { BrokerError } from '../../../src/core/errors.js';
import { EMPTY_EMBED } from '../../../src/core/message.js';
import { createRegistry } from '../../../src/core/registry.js';
import { INVOKE_FAILURES_HEADER } from '../../../src/core/settlement.js';
import { defineTask } from '../../../src/core/task.js';
import { createAmazonMqDispatcher } from '../../../src/lambda/amazon-mq-dispatcher.js';
import type { WorkerEvent } from '../../../src/worker/dispatch.js';
import {
  loadRmqEventFixture,
  rmqEvent,
  rmqEventMessageFrom,
  rmqEventMessageOf,
} from '../../helpers/amazon-mq-event.js';
import { RetryableError } from '../../helpers/factories.js';
import { fakeBroker, fakeContext, fakeRuntime, inProcessInvoker } from '../../helpers/lambda.js';

const QUEUE = 'important_queue';
const FIXTURE_ID = '38d6a70d-5c49-4042-9a53-c113fce8f83e';
const NOW = Date.now();

const runs: { id: string; args: unknown; kwargs: unknown; retries: number }[] = [];
const doWork = defineTask(
  {
    name: 'sentry.tasks.do_work',
    queue: QUEUE,
    retry: { on: [RetryableError] },
    defaultRetryDelay: 30,
  },
  (kwargs, ctx) => {
    runs.push({ id: ctx.id, args: ctx.args, kwargs, retries: ctx.retries });
    if (kwargs.fail === 'retry') throw new RetryableError('store busy');
    return 'done';
  },
);
const registry = createRegistry({ tasks: [doWork], queues: [{ name: QUEUE }] });

/** A dispatcher on a fake broker, invoking the task functions in this process. */
function dispatcher(options: { failInvokes?: boolean } = {}) {
  const broker = fakeBroker({ kind: 'rabbitmq' });
  const client = inProcessInvoker(registry, {
    prefix: '',
    ...(options.failInvokes
      ? {
          beforeInvoke: () => {
            throw Object.assign(new Error('Internal error.'), { name: 'ServiceException' });
          },
        }
      : {}),
  });
  const events: WorkerEvent[] = [];
  const handler = createAmazonMqDispatcher(fakeRuntime(registry, broker), {
    client,
    onOutcome: (event) => events.push(event),
  });
  return { broker, client, events, handler };
}

describe('createAmazonMqDispatcher', () => {
  it("runs the fixture event's Celery message in its task function and counts it", async () => {
    // Prepare
    runs.length = 0;
    const { broker, client, handler } = dispatcher();

    // Act
    const counts = await handler(loadRmqEventFixture(), fakeContext());

    // Assess
    expect(counts).toEqual({ succeeded: 1 });
    expect(client.calls.map((call) => [call.functionName, call.ids])).toEqual([
      ['task-sentry-tasks-do_work', [FIXTURE_ID]],
    ]);
    expect(runs).toEqual([
      {
        id: FIXTURE_ID,
        args: [1, 'two', { three: 3 }],
        kwargs: { user_id: 42, tags: ['a', 'b'] },
        retries: 0,
      },
    ]);
    expect(broker.published).toEqual([]);
    expect(broker.deadLettered).toEqual([]);
  });

  it('dead-letters a pickle message as it came, without invoking anything', async () => {
    // Prepare
    const { broker, client, handler } = dispatcher();
    const pickle = rmqEventMessageFrom({
      body: Buffer.from([0x80, 0x04, 0x95, 0x10]),
      headers: { task: 'sentry.tasks.do_work', id: 'pickled-1', retries: 0 },
      contentType: 'application/x-python-serialize',
      contentEncoding: 'binary',
    });

    // Act
    const counts = await handler(rmqEvent({ [QUEUE]: [pickle] }), fakeContext());

    // Assess
    expect(counts).toEqual({ invalid: 1 });
    expect(client.calls).toEqual([]);
    expect(broker.deadLettered).toEqual([
      {
        queue: QUEUE,
        raw: expect.objectContaining({
          headers: { task: 'sentry.tasks.do_work', id: 'pickled-1', retries: 0 },
          contentType: 'application/x-python-serialize',
          contentEncoding: 'binary',
          routingKey: QUEUE,
        }),
        reason: expect.objectContaining({
          reason: 'invalid-message',
          task: 'sentry.tasks.do_work',
          id: 'pickled-1',
        }),
      },
    ]);
  });

  it('dead-letters a message of an unknown task without invoking anything', async () => {
    // Prepare
    const { broker, client, handler } = dispatcher();
    const stranger = { ...doWork.createMessage(), task: 'sentry.tasks.gone' };

    // Act
    const counts = await handler(
      rmqEvent({ [QUEUE]: [rmqEventMessageOf(stranger)] }),
      fakeContext(),
    );

    // Assess
    expect(counts).toEqual({ dead: 1 });
    expect(client.calls).toEqual([]);
    expect(broker.deadLettered.map((item) => item.reason)).toEqual([
      expect.objectContaining({
        reason: 'unknown-task',
        task: 'sentry.tasks.gone',
        id: stranger.id,
      }),
    ]);
  });

  it('re-publishes a retry to its queue with the next retry count, due at its eta', async () => {
    // Prepare
    const { broker, handler } = dispatcher();
    const sent = doWork.createMessage({ kwargs: { fail: 'retry' } });

    // Act
    const counts = await handler(rmqEvent({ [QUEUE]: [rmqEventMessageOf(sent)] }), fakeContext());

    // Assess
    expect(counts).toEqual({ retry: 1 });
    expect(broker.published).toEqual([
      expect.objectContaining({
        id: sent.id,
        retries: 1,
        parentId: sent.id,
        exchange: '',
        routingKey: QUEUE,
        kwargs: { fail: 'retry' },
      }),
    ]);
    const eta = broker.published[0]?.eta?.getTime() ?? 0;
    expect(eta).toBeGreaterThanOrEqual(NOW + 30_000);
  });

  it('re-publishes a message not due yet unchanged, without invoking anything', async () => {
    // Prepare
    const { broker, client, handler } = dispatcher();
    const eta = new Date(Date.now() + 3_600_000);
    const sent = doWork.createMessage({ eta });

    // Act
    const counts = await handler(rmqEvent({ [QUEUE]: [rmqEventMessageOf(sent)] }), fakeContext());

    // Assess
    expect(counts).toEqual({ 'not-due': 1 });
    expect(client.calls).toEqual([]);
    expect(broker.published).toEqual([
      expect.objectContaining({ id: sent.id, retries: 0, eta, routingKey: QUEUE }),
    ]);
  });

  it('re-publishes the messages of a failed invoke without spending a retry', async () => {
    // Prepare
    const { broker, handler, events } = dispatcher({ failInvokes: true });
    const sent = doWork.createMessage({ kwargs: { n: 1 } });
    const before = Date.now();

    // Act
    const counts = await handler(rmqEvent({ [QUEUE]: [rmqEventMessageOf(sent)] }), fakeContext());

    // Assess
    expect(counts).toEqual({ 'invoke-failed': 1 });
    expect(events.map((event) => event.outcome)).toEqual([
      {
        kind: 'invoke-failed',
        detail: expect.stringMatching(/^InvokeError: invoking task-sentry-tasks-do_work failed/),
        failures: 1,
        dead: false,
      },
    ]);
    const [again] = broker.published;
    expect(again).toMatchObject({
      id: sent.id,
      retries: 0,
      routingKey: QUEUE,
      extraHeaders: { [INVOKE_FAILURES_HEADER]: 1 },
    });
    expect(again?.eta?.getTime()).toBeGreaterThanOrEqual(before + 1_000);
  });

  it('dead-letters as poison a message whose invokes failed up to the cap', async () => {
    // Prepare
    const { broker, handler } = dispatcher({ failInvokes: true });
    const sent = { ...doWork.createMessage(), extraHeaders: { [INVOKE_FAILURES_HEADER]: 4 } };

    // Act
    const counts = await handler(rmqEvent({ [QUEUE]: [rmqEventMessageOf(sent)] }), fakeContext());

    // Assess
    expect(counts).toEqual({ 'invoke-failed': 1 });
    expect(broker.published).toEqual([]);
    expect(broker.deadLettered.map((item) => item.reason)).toEqual([
      expect.objectContaining({ reason: 'poison', id: sent.id, errorType: 'InvokeError' }),
    ]);
  });

  it('settles a mixed batch from several queues and counts each outcome', async () => {
    // Prepare
    const { broker, handler } = dispatcher();
    const event = rmqEvent({
      [QUEUE]: [
        rmqEventMessageOf(doWork.createMessage()),
        rmqEventMessageOf(doWork.createMessage({ kwargs: { fail: 'retry' } })),
        rmqEventMessageOf(doWork.createMessage()),
      ],
      other_queue: [
        rmqEventMessageOf({ ...doWork.createMessage(), routingKey: 'other_queue' }),
        rmqEventMessageFrom({ body: 'not json', contentType: 'application/json' }),
      ],
    });

    // Act
    const counts = await handler(event, fakeContext());

    // Assess
    expect(counts).toEqual({ succeeded: 3, retry: 1, invalid: 1 });
    expect(broker.published).toHaveLength(1);
    expect(broker.deadLettered.map((item) => item.queue)).toEqual(['other_queue']);
  });

  it('fails, so the event source redelivers the batch, when a settlement cannot be stored', async () => {
    // Prepare
    const broker = fakeBroker({ failWith: new BrokerError('amqps://b-test is unreachable') });
    const handler = createAmazonMqDispatcher(fakeRuntime(registry, broker), {
      client: inProcessInvoker(registry, { prefix: '' }),
    });
    const event = rmqEvent({
      [QUEUE]: [rmqEventMessageOf(doWork.createMessage({ kwargs: { fail: 'retry' } }))],
    });

    // Act
    const dispatched = handler(event, fakeContext());

    // Assess
    await expect(dispatched).rejects.toThrow(BrokerError);
  });

  it('answers no counts for an event with no messages', async () => {
    // Prepare
    const { broker, handler } = dispatcher();

    // Act
    const counts = await handler(rmqEvent({}), fakeContext());

    // Assess
    expect(counts).toEqual({});
    expect(broker.settleCalls).toEqual([]);
  });

  it("publishes the next chain step with the task function's result before it returns", async () => {
    // Prepare: the task function has no broker; its result comes back in its outcome.
    const { broker, client, handler } = dispatcher();
    const step = {
      task: 'wf.add',
      args: [1],
      kwargs: {},
      options: { task_id: 'step-2-id', queue: 'py-q' },
      subtask_type: null,
      immutable: false,
    };
    const sent = {
      ...doWork.createMessage(),
      embed: { ...EMPTY_EMBED, chain: [step] },
      rawBody: null,
    };

    // Act
    const counts = await handler(rmqEvent({ [QUEUE]: [rmqEventMessageOf(sent)] }), fakeContext());

    // Assess
    expect(counts).toEqual({ succeeded: 1 });
    expect(client.calls[0]?.outcomes).toEqual([
      { kind: 'succeeded', durationMs: expect.any(Number), result: 'done' },
    ]);
    expect(broker.published).toEqual([
      expect.objectContaining({
        id: 'step-2-id',
        task: 'wf.add',
        args: ['done', 1],
        routingKey: 'py-q',
        parentId: sent.id,
        rootId: sent.id,
      }),
    ]);
  });
});
