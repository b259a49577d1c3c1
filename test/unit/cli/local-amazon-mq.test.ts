import type { ConsumeMessage } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeRmqEvent, type RmqEvent } from '../../../src/brokers/rabbitmq/amazon-mq-event.js';
import type { RedisResultBackend } from '../../../src/brokers/redis/redis-result-backend.js';
import {
  type FeederChannel,
  type FeederConnection,
  localDispatcher,
  runAmazonMqFeeder,
} from '../../../src/cli/local-amazon-mq.js';
import { toRmqEvent, vhostOf } from '../../../src/cli/local-amazon-mq-event.js';
import { encodeAmqpMessage, untypeAmqpValue } from '../../../src/core/amqp-codec.js';
import { BrokerError } from '../../../src/core/errors.js';
import { createTaskMessage, type TaskMessage } from '../../../src/core/message.js';
import { createRegistry } from '../../../src/core/registry.js';
import type { OutcomeRecord } from '../../../src/core/result-backend.js';
import { defineTask } from '../../../src/core/task.js';
import type { WorkerEvent } from '../../../src/worker/dispatch.js';
import { rmqEventMessageOf } from '../../helpers/amazon-mq-event.js';
import { RetryableError } from '../../helpers/factories.js';
import { fakeBroker, inProcessInvoker } from '../../helpers/lambda.js';

const QUEUE = 'events';
const URL = 'amqp://guest:guest@127.0.0.1:5672/sc-unit';
const saveEvent = defineTask({ name: 'ingest.save_event', queue: QUEUE }, () => null);
const registry = createRegistry({ tasks: [saveEvent], queues: [{ name: QUEUE }] });
const flaky = defineTask(
  { name: 'ingest.flaky', queue: QUEUE, retry: { on: [RetryableError] }, defaultRetryDelay: 5 },
  (kwargs) => {
    if (kwargs.fail) throw new RetryableError('store busy');
    return 'saved';
  },
);
const flakyRegistry = createRegistry({ tasks: [flaky], queues: [{ name: QUEUE }] });

function taskMessage(index: number): TaskMessage {
  return createTaskMessage({
    task: 'ingest.save_event',
    queue: QUEUE,
    kwargs: { event_id: `evt-${index}` },
  });
}

/** A message as amqplib hands it to a consumer: headers decoded, no AMQP type tags. */
function consumed(message: TaskMessage, deliveryTag = 1, redelivered = false): ConsumeMessage {
  const { content, options } = encodeAmqpMessage(message);
  return {
    content,
    fields: {
      deliveryTag,
      redelivered,
      exchange: '',
      routingKey: QUEUE,
      consumerTag: 'ctag',
    },
    properties: {
      headers: untypeAmqpValue(options.headers) as Record<string, unknown>,
      contentType: options.contentType,
      contentEncoding: options.contentEncoding,
      deliveryMode: 2,
      priority: options.priority,
      correlationId: options.correlationId,
      replyTo: undefined,
      expiration: undefined,
      messageId: undefined,
      timestamp: undefined,
      type: undefined,
      userId: undefined,
      appId: undefined,
      clusterId: undefined,
    },
  } as ConsumeMessage;
}

/** A connection whose one consumer channel records what the feeder acks and returns. */
function fakeConnection() {
  const acked: number[] = [];
  const requeued: number[] = [];
  let deliver: (message: ConsumeMessage | null) => void = () => {};
  let consuming = false;
  let cancelled = false;
  let closed = false;
  const channel: FeederChannel = {
    assertExchange: async () => ({}),
    assertQueue: async () => ({}),
    bindQueue: async () => ({}),
    bindExchange: async () => ({}),
    prefetch: async () => ({}),
    consume: async (_queue, onMessage) => {
      deliver = onMessage;
      consuming = true;
      return { consumerTag: 'ctag' };
    },
    cancel: async () => {
      cancelled = true;
    },
    ack: (message) => acked.push(message.fields.deliveryTag),
    nack: (message, _allUpTo, requeue) => {
      if (requeue) requeued.push(message.fields.deliveryTag);
    },
    close: async () => {},
    on: () => channel,
  };
  const connection: FeederConnection = {
    createChannel: async () => channel,
    close: async () => {
      closed = true;
    },
    on: () => connection,
  };
  return {
    connection,
    acked,
    requeued,
    deliver: (message: ConsumeMessage) => deliver(message),
    get consuming() {
      return consuming;
    },
    get cancelled() {
      return cancelled;
    },
    get closed() {
      return closed;
    },
  };
}

/** A dispatcher standing in for the real one: answers (or throws) what `answer` says. */
function fakeDispatcher(answer: (event: RmqEvent) => Promise<unknown>) {
  const events: RmqEvent[] = [];
  return {
    events,
    async dispatch(event: RmqEvent) {
      events.push(event);
      return answer(event);
    },
  };
}

const stops: AbortController[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop.abort();
});

/** Starts a feeder on a fake connection; returns what it needs to be observed and stopped. */
function startFeeder(
  dispatcher: ReturnType<typeof fakeDispatcher>,
  options: { batchSize?: number; batchWindowMs?: number } = {},
) {
  const fake = fakeConnection();
  const stop = new AbortController();
  stops.push(stop);
  const warnings: string[] = [];
  const done = runAmazonMqFeeder({
    url: URL,
    registry,
    dispatch: dispatcher.dispatch,
    signal: stop.signal,
    warn: (message) => warnings.push(message),
    connect: async () => fake.connection,
    batchWindowMs: 20,
    ...options,
  });
  return { fake, stop, warnings, done };
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('toRmqEvent', () => {
  it('frames a consumed message exactly as the test stand-in for the event source does', () => {
    const message = taskMessage(1);

    const event = toRmqEvent(QUEUE, 'sc-unit', [consumed(message, 1, true)]);

    expect(event.eventSource).toBe('aws:rmq');
    expect(Object.keys(event.rmqMessagesByQueue)).toEqual(['events::sc-unit']);
    expect(event.rmqMessagesByQueue['events::sc-unit']).toEqual([rmqEventMessageOf(message, true)]);
  });

  it('gives the dispatcher back the message that was published, headers and all', () => {
    const message = {
      ...createTaskMessage({
        task: 'ingest.save_event',
        queue: QUEUE,
        kwargs: { event_id: 'evt-ü' },
      }),
      retries: 2,
      extraHeaders: { 'x-trace': 'abc', 'x-count': 3 },
    };

    const [delivery] = decodeRmqEvent(toRmqEvent(QUEUE, '/', [consumed(message)]));

    expect(delivery?.queue).toBe(QUEUE);
    expect(delivery?.vhost).toBe('/');
    expect(delivery?.result).toMatchObject({
      ok: true,
      message: {
        id: message.id,
        task: 'ingest.save_event',
        kwargs: { event_id: 'evt-ü' },
        retries: 2,
        extraHeaders: { 'x-trace': 'abc', 'x-count': 3 },
      },
    });
  });
});

describe('vhostOf', () => {
  it.each([
    ['amqp://guest:guest@127.0.0.1:5672/', '/'],
    ['amqp://guest:guest@127.0.0.1:5672', '/'],
    ['amqp://guest:guest@127.0.0.1:5672/%2F', '/'],
    ['amqps://u:p@b-1.mq.amazonaws.com:5671/tasks', 'tasks'],
  ])('reads the vhost of %s as %s', (url, vhost) => {
    expect(vhostOf(url)).toBe(vhost);
  });
});

describe('runAmazonMqFeeder', () => {
  it('acknowledges a batch only once the dispatcher has returned success', async () => {
    let release: () => void = () => {};
    const answered = new Promise<void>((resolve) => {
      release = resolve;
    });
    const dispatcher = fakeDispatcher(async () => {
      await answered;
      return { succeeded: 2 };
    });
    const { fake, stop, warnings, done } = startFeeder(dispatcher);

    await until(() => fake.consuming);
    fake.deliver(consumed(taskMessage(1), 1));
    fake.deliver(consumed(taskMessage(2), 2));
    await until(() => dispatcher.events.length === 1);

    expect(fake.acked).toEqual([]);

    release();
    await until(() => fake.acked.length === 2);
    stop.abort();
    await done;

    expect(fake.acked).toEqual([1, 2]);
    expect(fake.requeued).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it('sends at most batchSize messages per event, one event at a time', async () => {
    let inFlight = 0;
    let most = 0;
    const dispatcher = fakeDispatcher(async (event) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      return { succeeded: Object.values(event.rmqMessagesByQueue).flat().length };
    });
    const { fake, stop, done } = startFeeder(dispatcher, { batchSize: 10 });

    await until(() => fake.consuming);
    for (let tag = 1; tag <= 25; tag++) fake.deliver(consumed(taskMessage(tag), tag));
    await until(() => fake.acked.length === 25);
    stop.abort();
    await done;

    const sizes = dispatcher.events.map(
      (event) => Object.values(event.rmqMessagesByQueue)[0]?.length,
    );
    expect(sizes).toEqual([10, 10, 5]);
    expect(most).toBe(1);
  });

  it('returns a batch to the queue when the dispatcher fails', async () => {
    const dispatcher = fakeDispatcher(async () => {
      throw new BrokerError('RabbitMQ at 127.0.0.1:5672/: publish failed: channel closed');
    });
    const { fake, stop, warnings, done } = startFeeder(dispatcher);

    await until(() => fake.consuming);
    fake.deliver(consumed(taskMessage(1), 7));
    await until(() => warnings.length === 1);
    // The feeder waits before handing the batch back (no tight loop on a failing function);
    // stopping cuts the wait short.
    stop.abort();
    await done;

    expect(warnings).toEqual([
      'events: the dispatcher failed, 1 message(s) go back to the queue: RabbitMQ at 127.0.0.1:5672/: publish failed: channel closed',
    ]);
    expect(fake.acked).toEqual([]);
    expect(fake.requeued).toEqual([7]);
  });

  it('on stop, cancels its consumer, returns what it holds, and closes the connection', async () => {
    const dispatcher = fakeDispatcher(async () => ({ succeeded: 1 }));
    const { fake, stop, done } = startFeeder(dispatcher, { batchWindowMs: 60_000 });

    await until(() => fake.consuming);
    fake.deliver(consumed(taskMessage(1), 3));
    await new Promise((resolve) => setTimeout(resolve, 20));
    stop.abort();
    await done;

    expect(dispatcher.events).toEqual([]);
    expect(fake.requeued).toEqual([3]);
    expect(fake.cancelled).toBe(true);
    expect(fake.closed).toBe(true);
  });
});

describe('localDispatcher', () => {
  it('runs each message in its task function and reports every one of them on its own', async () => {
    // Prepare
    const broker = fakeBroker({ kind: 'rabbitmq' });
    const client = inProcessInvoker(flakyRegistry, { prefix: 'svc-dev-' });
    const events: WorkerEvent[] = [];
    const dispatch = localDispatcher({
      registry: flakyRegistry,
      broker,
      client,
      functionPrefix: 'svc-dev-',
      onOutcome: (event) => events.push(event),
    });
    const ok = flaky.createMessage({ kwargs: { fail: false } });
    const failing = flaky.createMessage({ kwargs: { fail: true } });

    // Act
    const counts = await dispatch(toRmqEvent(QUEUE, '/', [consumed(ok, 1), consumed(failing, 2)]));

    // Assess
    expect(counts).toEqual({ succeeded: 1, retry: 1 });
    expect(new Set(client.calls.map((call) => call.functionName))).toEqual(
      new Set(['svc-dev-task-ingest-flaky']),
    );
    const byId = new Map(
      events.map((event) => [
        event.delivery.result.ok ? event.delivery.result.message.id : '?',
        event.outcome,
      ]),
    );
    expect(byId.get(ok.id)).toMatchObject({ kind: 'succeeded' });
    expect(byId.get(failing.id)).toMatchObject({
      kind: 'retry',
      errorType: 'RetryableError',
      errorMessage: 'store busy',
    });
    // The retry goes back through the delay levels, due after the task's delay.
    expect(broker.published.map((message) => [message.id, message.retries])).toEqual([
      [failing.id, 1],
    ]);
  });

  it('stores what the task functions return in the result backend it is given', async () => {
    // Prepare
    const recorded: OutcomeRecord[] = [];
    const backend = {
      setChordSize: async () => {},
      record: async (items: readonly OutcomeRecord[]) => {
        recorded.push(...items);
      },
    };
    const dispatch = localDispatcher({
      registry: flakyRegistry,
      broker: fakeBroker({ kind: 'rabbitmq' }),
      // Their RESULT_BACKEND makes the task functions return results.
      client: inProcessInvoker(flakyRegistry, { prefix: 'svc-dev-', handler: { results: true } }),
      functionPrefix: 'svc-dev-',
      onOutcome: () => {},
      resultBackend: backend as unknown as RedisResultBackend,
    });
    const ok = flaky.createMessage({ kwargs: { fail: false } });

    // Act
    await dispatch(toRmqEvent(QUEUE, '/', [consumed(ok, 1)]));

    // Assess
    expect(recorded).toMatchObject([
      { message: { id: ok.id }, outcome: { kind: 'succeeded', result: 'saved' }, store: true },
    ]);
  });
});
