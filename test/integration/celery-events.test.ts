/**
 * Proof that Python Celery's monitoring reads our events: a real `app.events.Receiver` feeding
 * `app.events.State()` (Celery 5.2.6, and 5.6.3 with `CELERY56_PY`), the way Flower and
 * `celery events` consume them, on Redis (a throw-away server) and RabbitMQ (a throw-away
 * vhost). Also compares our wire form with what Celery's own `EventDispatcher` publishes.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChannelModel, GetMessage } from 'amqplib';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEventDispatcher } from '../../src/brokers/create-event-dispatcher.js';
import {
  type EventDraft,
  taskFailed,
  taskReceived,
  taskRejected,
  taskRetried,
  taskRevoked,
  taskSent,
  taskStarted,
  taskSucceeded,
  workerEvent,
} from '../../src/core/celery-events.js';
import type { EventDispatcher } from '../../src/core/event-dispatcher.js';
import type { JsonObject, JsonValue } from '../../src/core/json.js';
import { createTaskMessage, type TaskMessage } from '../../src/core/message.js';
import { pythonRepr } from '../../src/core/python-repr.js';
import { PYTHON } from '../helpers/celery.js';
import {
  captureCeleryEvents,
  pythonReprs,
  type StateDump,
  sendPythonEvents,
  stopCaptures,
} from '../helpers/celery-events.js';
import { createTestVhost, listExchanges, type TestVhost } from '../helpers/rabbitmq.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.js';

/** Debian's 5.2.6 always; 5.6.3 too when `CELERY56_PY` names its interpreter. */
const CELERY_VERSIONS = [
  { version: '5.2.6', python: PYTHON },
  ...(process.env.CELERY56_PY ? [{ version: '5.6.3', python: process.env.CELERY56_PY }] : []),
];

/** How long a receiver listens: long enough for every send below and three heartbeats. */
const CAPTURE_SECONDS = 5;

let redisServer: ThrowawayRedis;
let redisAdmin: Redis;
let vhost: TestVhost;
const dispatchers: EventDispatcher[] = [];

beforeAll(async () => {
  redisServer = await startThrowawayRedis();
  redisAdmin = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
  vhost = await createTestVhost('events');
});

afterEach(async () => {
  await stopCaptures();
  await Promise.all(dispatchers.splice(0).map((dispatcher) => dispatcher.close()));
});

afterAll(async () => {
  await redisAdmin?.quit();
  await redisServer?.stop();
  await vhost?.remove();
});

/** Database 3 of the throw-away server: the fanout channel names the database (`/3.`). */
const redisUrl = () => redisServer.url.replace(/\/0$/, '/3');

const BROKERS = [
  { kind: 'redis', url: redisUrl },
  { kind: 'rabbitmq', url: () => vhost.url },
] as const;

function dispatcher(url: string, hostname: string, keyPrefix?: string): EventDispatcher {
  const config = keyPrefix === undefined ? url : { kind: 'redis' as const, url, keyPrefix };
  const created = createEventDispatcher(config, { hostname });
  dispatchers.push(created);
  return created;
}

/** A message as our producer writes it (Python reprs of the arguments, as Python's does). */
function pythonMessage(task: string, args: JsonValue[], kwargs: JsonObject = {}): TaskMessage {
  return createTaskMessage({ task, queue: 'orders', args, kwargs });
}

/**
 * Starts a receiver and waits until it listens: on RabbitMQ its queue is bound once it says
 * READY; on Redis, where an event nobody is subscribed to is lost, until it has `PSUBSCRIBE`d.
 */
async function listen(kind: string, url: string, python: string, extra = {}) {
  const capture = captureCeleryEvents({ broker: url, seconds: CAPTURE_SECONDS, python, ...extra });
  await capture.ready;
  if (kind === 'redis') {
    const deadline = Date.now() + 10_000;
    while (Number(await redisAdmin.call('PUBSUB', 'NUMPAT')) < 1) {
      if (Date.now() > deadline) throw new Error('the receiver never subscribed');
      await sleep(50);
    }
  }
  return capture;
}

/** Sends `worker-heartbeat` every second until `until` resolves. */
async function heartbeatUntil(events: EventDispatcher, until: Promise<unknown>): Promise<void> {
  let done = false;
  const stop = () => {
    done = true;
  };
  until.then(stop, stop);
  while (!done) {
    await events.send([workerEvent('heartbeat', { active: 0, processed: 6 })]);
    await Promise.race([sleep(1000), until.catch(() => undefined)]);
  }
}

describe.each(BROKERS)('on $kind', ({ kind, url }) => {
  describe.each(CELERY_VERSIONS)('Celery $version State', ({ python }) => {
    it('shows our tasks in their final states and our heartbeating worker alive', async () => {
      // Prepare
      const capture = await listen(kind, url(), python);
      const workerName = `orders-fn@${randomUUID().slice(0, 12)}`;
      const worker = dispatcher(url(), workerName);
      const producer = dispatcher(url(), `ts${process.pid}@producer`);
      const leaving = dispatcher(url(), `orders-fn@${randomUUID().slice(0, 12)}`);
      const charged = pythonMessage('orders.charge', ['order-1', 2], { source: 'api' });
      const declined = pythonMessage('orders.charge', ['order-2', 3]);
      const flaky = { ...pythonMessage('orders.notify', ['order-3']), retries: 2 };
      const poisoned = pythonMessage('orders.charge', ['order-4', 0]);
      const expired = pythonMessage('orders.charge', ['order-5', 1]);
      const batched = pythonMessage('orders.count', []);

      // Act
      await worker.send([workerEvent('online', { active: 0, processed: 0 })]);
      await leaving.send([workerEvent('online', { active: 0, processed: 0 })]);
      await producer.send([taskSent(charged)]);
      await worker.send([taskReceived(charged), taskStarted(charged.id)]);
      await worker.send([taskSucceeded(charged.id, { charged: true, cents: 1250 }, 0.125)]);
      await worker.send([
        taskReceived(declined),
        taskStarted(declined.id),
        taskFailed(declined.id, new TypeError('card declined')),
      ]);
      await worker.send([
        taskReceived(flaky),
        taskStarted(flaky.id),
        taskRetried(flaky.id, new Error('mail server timeout')),
      ]);
      await worker.send([taskReceived(poisoned), taskRejected(poisoned.id, false)]);
      await worker.send([taskReceived(expired), taskRevoked(expired.id, { expired: true })]);
      await worker.send(
        [taskReceived(batched), taskStarted(batched.id), taskSucceeded(batched.id, 7, 0.5)],
        { multi: true },
      );
      await leaving.send([workerEvent('offline', { active: 0, processed: 0 })]);
      await heartbeatUntil(worker, capture.result);
      const state: StateDump = await capture.result;

      // Assess
      expect(state.tasks[charged.id]).toMatchObject({
        name: 'orders.charge',
        state: 'SUCCESS',
        args: "['order-1', 2]",
        kwargs: "{'source': 'api'}",
        result: "{'charged': True, 'cents': 1250}",
        runtime: 0.125,
        retries: 0,
        worker: workerName,
        client: `ts${process.pid}@producer`,
        routing_key: 'orders',
      });
      for (const field of ['sent', 'received', 'started', 'succeeded'] as const) {
        expect(state.tasks[charged.id]?.[field]).toBeGreaterThan(1.7e9);
      }
      expect(state.tasks[declined.id]).toMatchObject({
        state: 'FAILURE',
        args: "['order-2', 3]",
        exception: "TypeError('card declined')",
      });
      expect(state.tasks[declined.id]?.traceback).toContain('TypeError: card declined');
      expect(state.tasks[flaky.id]).toMatchObject({
        name: 'orders.notify',
        state: 'RETRY',
        retries: 2,
        exception: "Error('mail server timeout')",
      });
      // Celery's own State ranks REJECTED before RECEIVED (celery/states.py PRECEDENCE), so a
      // rejection after task-received only stamps `rejected`: the same for a Python worker.
      expect(state.tasks[poisoned.id]).toMatchObject({ state: 'RECEIVED' });
      expect(state.tasks[poisoned.id]?.rejected).toBeGreaterThan(1.7e9);
      expect(state.tasks[expired.id]?.state).toBe('REVOKED');
      expect(state.tasks[batched.id]).toMatchObject({ state: 'SUCCESS', result: '7', args: '[]' });
      expect(state.workers[workerName]).toMatchObject({
        alive: true,
        freq: 2,
        processed: 6,
        sw_ident: 'serverless-celery',
        sw_sys: 'Linux',
        pid: process.pid,
      });
      const heartbeats = state.events.filter(
        (e) => e.type === 'worker-heartbeat' && e.hostname === workerName,
      );
      expect(heartbeats.length).toBeGreaterThanOrEqual(3);
      expect(state.workers[leaving.hostname]?.alive).toBe(false);
      const clocks = state.events.filter((e) => e.hostname === workerName).map((e) => e.clock);
      expect(clocks).toEqual([...clocks].sort((a, b) => a - b));
      expect(new Set(clocks).size).toBe(clocks.length);
    });
  });
});

describe.each(CELERY_VERSIONS)('Celery $version State on Redis', ({ python }) => {
  it('reads events under a global_keyprefix', async () => {
    // Prepare
    const prefix = `sc-events-${randomUUID().slice(0, 8)}:`;
    const capture = await listen('redis', redisUrl(), python, {
      transportOptions: { global_keyprefix: prefix },
    });
    const worker = dispatcher(redisUrl(), 'prefixed@env', prefix);
    const stray = dispatcher(redisUrl(), 'unprefixed@env');
    const message = pythonMessage('orders.charge', ['order-6', 1]);
    const other = pythonMessage('orders.charge', ['order-7', 1]);

    // Act
    await worker.send([taskReceived(message), taskSucceeded(message.id, null, 0.01)]);
    await stray.send([taskReceived(other), taskSucceeded(other.id, null, 0.01)]);
    const state = await capture.result;

    // Assess
    expect(state.tasks[message.id]).toMatchObject({ state: 'SUCCESS', result: 'None' });
    expect(state.tasks[other.id]).toBeUndefined();
  });
});

describe("wire form, next to Celery's own EventDispatcher", () => {
  /** Splits Celery's event body into what must match exactly and what varies per sender. */
  function comparable(body: Record<string, unknown>) {
    const { hostname, pid, clock, timestamp, ...rest } = body;
    return {
      rest,
      kinds: [typeof hostname, typeof pid, typeof clock, typeof timestamp],
    };
  }

  const DRAFTS: EventDraft[] = [
    { type: 'task-succeeded', fields: { uuid: 'probe-task', result: "'ok'", runtime: 0.5 } },
    {
      type: 'worker-heartbeat',
      fields: {
        freq: 2,
        active: 0,
        processed: 3,
        loadavg: [0.1, 0.2, 0.3],
        sw_ident: 'py-celery',
        sw_ver: '5',
        sw_sys: 'Linux',
      },
    },
  ];

  it("publishes on the channels and in kombu's envelope on Redis, the body as kombu leaves it unencoded", async () => {
    // Prepare
    const subscriber = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
    const seen: { channel: string; envelope: Record<string, unknown> }[] = [];
    subscriber.on('pmessage', (_pattern, channel, text) => {
      seen.push({ channel, envelope: JSON.parse(text) });
    });
    await subscriber.psubscribe('*');
    const ours = dispatcher(redisServer.url, 'probe@ts');

    // Act: Celery's default (base64 bodies), kombu's `body_encoding: None`, then ours.
    await sendPythonEvents(redisServer.url, 'probe@py');
    await sendPythonEvents(redisServer.url, 'probe@py', { body_encoding: null });
    await ours.send(DRAFTS);
    const deadline = Date.now() + 5000;
    while (seen.length < 6 && Date.now() < deadline) await sleep(20);
    await subscriber.quit();

    // Assess
    expect(seen.map((message) => message.channel)).toEqual(
      Array(3).fill(['/0.celeryev/task.succeeded', '/0.celeryev/worker.heartbeat']).flat(),
    );
    const [base64, unencoded, ts] = [seen.slice(0, 2), seen.slice(2, 4), seen.slice(4)];
    const decode = ({ body, properties }: Record<string, unknown>) => {
      const encoding = (properties as Record<string, unknown>).body_encoding;
      const text = encoding === 'base64' ? Buffer.from(String(body), 'base64') : String(body);
      return JSON.parse(text.toString());
    };
    const shape = (envelope: Record<string, unknown>) => {
      const { body, headers, properties, ...rest } = envelope;
      const { delivery_tag: tag, ...fixed } = properties as Record<string, unknown>;
      return { keys: Object.keys(envelope), rest, fixed, tag: typeof tag, body: typeof body };
    };
    for (const [index, theirs] of unencoded.entries()) {
      const mine = ts[index]?.envelope as Record<string, unknown>;
      expect(shape(mine)).toEqual(shape(theirs.envelope));
      expect(mine.headers).toEqual({ hostname: 'probe@ts' });
      expect(comparable(decode(mine))).toEqual(comparable(decode(theirs.envelope)));
      expect(Object.keys(decode(mine))).toEqual(Object.keys(decode(theirs.envelope)));
      // The same event as Celery's default form, but for the body's encoding.
      const celeryDefault = base64[index]?.envelope as Record<string, unknown>;
      expect(comparable(decode(celeryDefault))).toEqual(comparable(decode(theirs.envelope)));
      expect(shape(celeryDefault).fixed).toEqual({ ...shape(mine).fixed, body_encoding: 'base64' });
    }
  });

  it('declares celeryev as Celery does and publishes with its properties on RabbitMQ', async () => {
    // Prepare: ours declares the exchange; Python's declaration must then agree with it.
    const ours = dispatcher(vhost.url, 'probe@ts');
    await ours.send([workerEvent('heartbeat', { active: 0, processed: 0 })]);
    const connection: ChannelModel = await amqp.connect(vhost.url);
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, 'celeryev', '#');

    // Act
    await sendPythonEvents(vhost.url, 'probe@py');
    await ours.send(DRAFTS);
    const got: GetMessage[] = [];
    for (let message = await channel.get(queue); message; message = await channel.get(queue)) {
      got.push(message);
    }
    await connection.close();

    // Assess
    const exchange = (await listExchanges(vhost.name)).find((each) => each.name === 'celeryev');
    expect(exchange).toMatchObject({ type: 'topic', durable: true, auto_delete: false });
    expect(got.map((message) => message.fields.routingKey)).toEqual([
      'task.succeeded',
      'worker.heartbeat',
      'task.succeeded',
      'worker.heartbeat',
    ]);
    const view = (message: GetMessage | undefined) => ({
      exchange: message?.fields.exchange,
      properties: {
        ...message?.properties,
        headers: Object.keys(message?.properties.headers ?? {}),
      },
      body: comparable(JSON.parse(message?.content.toString('utf8') ?? 'null')),
    });
    expect(view(got[2])).toEqual(view(got[0]));
    expect(view(got[3])).toEqual(view(got[1]));
    expect(got[2]?.properties.headers).toEqual({ hostname: 'probe@ts' });
  });

  it("writes result and exception text as Python's repr() does", async () => {
    const values: JsonValue[] = [
      null,
      true,
      [1, -2.5, 1e-7, 1.5e16, 123456789012, 999999999999999900000, 1.5e300, 0.1 + 0.2],
      { text: "it's", quote: 'say "hi"', both: `'"`, tab: 'a\tb\n', bell: '\u0007\u00a0é€😀' },
      'back\\slash',
      {},
      [],
    ];
    expect(values.map((value) => pythonRepr(value))).toEqual(await pythonReprs(values));
  });
});
