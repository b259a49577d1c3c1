/**
 * What only RabbitMQ has, on the real broker at 127.0.0.1:5672: the declared topology read back
 * with rabbitmqctl (and compared with Celery's capture), kombu's native delayed delivery levels,
 * delay precision, header wire types as py-amqp reads them, priority order, reconnection,
 * dead-letter headers and quorum delivery limits. Everything lives in throw-away vhosts.
 *
 * Publish, receive, settle, retry-later, dead-letter and crash recovery as such are the contract
 * suite's (`broker-contract.test.ts`); this file does not repeat them.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { type Channel, connect } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/brokers/broker.js';
import { type AmqpConnect, RabbitMqBroker } from '../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { DELAY_BITS, deliveryBindingKey } from '../../src/brokers/rabbitmq/topology.js';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import { BrokerError } from '../../src/core/errors.js';
import { createRetryMessage, type TaskMessage } from '../../src/core/message.js';
import { type QueueDeclarationInput, queueDeclarationSchema } from '../../src/core/queue.js';
import { defineTask } from '../../src/core/task.js';
import { expectDecoded } from '../helpers/decode.js';
import { type AmqpTopologyFixture, loadCeleryFixture } from '../helpers/fixtures.js';
import {
  argumentsOf,
  closeConnections,
  createTestVhost,
  listBindings,
  listExchanges,
  listQueues,
  type TestVhost,
} from '../helpers/rabbitmq.js';

const PY = process.env.PY ?? '/usr/bin/python3';
const INSPECT_QUEUE = path.resolve(
  import.meta.dirname,
  '../../../shared/celery-interop/inspect_queue.py',
);
const doWork = defineTask({ name: 'sentry.tasks.do_work' }, () => null);

let vhost: TestVhost;
const extraVhosts: TestVhost[] = [];
const brokers: RabbitMqBroker[] = [];
let warnings: string[] = [];

beforeAll(async () => {
  vhost = await createTestVhost();
});

afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
  for (const extra of extraVhosts.splice(0)) await extra.remove();
  warnings = [];
});

afterAll(async () => {
  await vhost.remove();
});

interface BrokerOptions {
  readonly url?: string;
  readonly queues?: QueueDeclarationInput[];
  readonly delayQueueType?: 'quorum' | 'classic';
  readonly delayPrefix?: string;
  readonly connect?: AmqpConnect;
}

/** A broker on the file's vhost (or `url`), closed after the test. */
function makeBroker({ url, queues = [], connect, ...options }: BrokerOptions = {}): RabbitMqBroker {
  const config = parseBrokerConfig({ kind: 'rabbitmq', url: url ?? vhost.url, ...options });
  if (config.kind !== 'rabbitmq') throw new Error('unreachable');
  const broker = new RabbitMqBroker({
    config,
    ...(connect ? { connect } : {}),
    queues: queues.map((queue) => queueDeclarationSchema.parse(queue)),
    logger: { warn: (message) => warnings.push(message) },
  });
  brokers.push(broker);
  return broker;
}

/** A vhost of the test's own, removed after it (for topologies that must not meet). */
async function makeVhost(): Promise<TestVhost> {
  const extra = await createTestVhost();
  extraVhosts.push(extra);
  return extra;
}

function uniqueQueue(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

function call(queue: string, args: unknown[] = [], extra: Partial<TaskMessage> = {}): TaskMessage {
  return { ...doWork.createMessage({ queue, args: args as never }), ...extra };
}

/** Receives until `count` deliveries arrived or `timeoutMs` passed. */
async function receiveAll(
  broker: RabbitMqBroker,
  queue: string,
  count: number,
  timeoutMs = 10_000,
): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  const deadline = Date.now() + timeoutMs;
  while (deliveries.length < count && Date.now() < deadline) {
    deliveries.push(
      ...(await broker.receive(queue, { max: count - deliveries.length, waitMs: 200 })),
    );
  }
  return deliveries;
}

function done(deliveries: Delivery[]) {
  return deliveries.map((delivery) => ({ delivery, settlement: { kind: 'done' } as const }));
}

/** Runs `work` on a channel of a connection of its own, as a foreign client would. */
async function withRawChannel<T>(work: (channel: Channel) => Promise<T>, url = vhost.url) {
  const connection = await connect(url);
  try {
    return await work(await connection.createChannel());
  } finally {
    await connection.close();
  }
}

/** Ready and unacked counts of `queue` as the broker itself reports them. */
async function brokerCounts(name: string, queue: string) {
  const listed = (await listQueues(name)).find((entry) => entry.name === queue);
  return { ready: listed?.messages_ready, unacked: listed?.messages_unacknowledged };
}

const byName = <T extends { name: string }>(items: T[]) =>
  [...items].sort((a, b) => a.name.localeCompare(b.name));
interface Route {
  readonly source_name: string;
  readonly destination_kind: string;
  readonly destination_name: string;
}
const routeOf = (binding: Route) =>
  `${binding.source_name} ${binding.destination_kind} ${binding.destination_name}`;
const byRoute = <T extends Route>(items: T[]) =>
  [...items].sort((a, b) => routeOf(a).localeCompare(routeOf(b)));

describe('topology read back from the broker', () => {
  it('declares a default queue exactly as Celery does, plus its delay binding and dead-letter queue', async () => {
    const celery = loadCeleryFixture<AmqpTopologyFixture>('amqp-topology');
    const queue = uniqueQueue('plain');
    const broker = makeBroker();

    await broker.publish([call(queue)]);
    const [queues, exchanges, bindings] = await Promise.all([
      listQueues(vhost.name),
      listExchanges(vhost.name),
      listBindings(vhost.name),
    ]);

    const rename = (name: string) => (name === 'important_queue' ? queue : name);
    const celeryQueue = celery.queues.find((q) => q.name === 'important_queue');
    const celeryExchange = celery.exchanges.find((e) => e.name === 'important_queue');
    const celeryBindings = celery.bindings
      .filter((binding) => binding.destination_name === 'important_queue')
      .map((binding) => ({
        ...binding,
        source_name: rename(binding.source_name),
        destination_name: queue,
        routing_key: rename(binding.routing_key),
      }));
    expect(queues.find((q) => q.name === queue)).toMatchObject({ ...celeryQueue, name: queue });
    expect(exchanges.find((e) => e.name === queue)).toEqual({ ...celeryExchange, name: queue });
    const fromDelays = {
      source_name: 'celery_delayed_delivery',
      destination_name: queue,
      destination_kind: 'queue',
      routing_key: deliveryBindingKey(queue),
      arguments: [],
    };
    expect(byRoute(bindings.filter((binding) => binding.destination_name === queue))).toEqual(
      byRoute([...celeryBindings, fromDelays]),
    );
    expect(queues.find((q) => q.name === `${queue}.dlq`)).toMatchObject({
      durable: true,
      auto_delete: false,
      arguments: [],
    });
  });

  it.each([
    { label: 'durable: false', declared: { durable: false }, durable: false, args: {} },
    {
      label: 'maxPriority: 9',
      declared: { maxPriority: 9 },
      durable: true,
      args: { 'x-max-priority': 9 },
    },
    {
      label: 'a quorum x-queue-type',
      declared: { arguments: { 'x-queue-type': 'quorum' } },
      durable: true,
      args: { 'x-queue-type': 'quorum' },
    },
  ])(
    'declares a queue registered with $label with exactly that',
    async ({ declared, durable, args }) => {
      const queue = uniqueQueue('declared');
      const broker = makeBroker({ queues: [{ name: queue, ...declared }] });

      await broker.publish([call(queue)]);
      const listed = (await listQueues(vhost.name)).find((q) => q.name === queue);
      const exchange = (await listExchanges(vhost.name)).find((e) => e.name === queue);

      expect(listed).toMatchObject({ durable, auto_delete: false });
      expect(argumentsOf(listed)).toEqual(args);
      // kombu's Exchange is durable whatever its queue is (checked with kombu 5.2.4).
      expect(exchange).toMatchObject({ type: 'direct', durable: true, auto_delete: false });
    },
  );

  it('explains a 406 on a queue that exists with other arguments, and goes on with other queues', async () => {
    const clash = uniqueQueue('clash');
    await withRawChannel((channel) =>
      channel.assertQueue(clash, { durable: true, arguments: { 'x-max-priority': 10 } }),
    );
    const broker = makeBroker();

    const failure = await broker.publish([call(clash)]).catch((error: unknown) => error);
    const other = uniqueQueue('other');
    await broker.publish([call(other, ['still works'])]);
    const received = await receiveAll(broker, other, 1);
    await broker.settle(done(received));
    const matching = makeBroker({ queues: [{ name: clash, maxPriority: 10 }] });
    await matching.publish([call(clash)]);

    expect(failure).toBeInstanceOf(BrokerError);
    expect((failure as Error).message).toMatch(`RabbitMQ at 127.0.0.1:5672 vhost "${vhost.name}"`);
    expect((failure as Error).message).toMatch(`queue ${clash} already exists`);
    expect((failure as Error).message).toMatch(/inequivalent arg 'x-max-priority'/);
    expect((failure as Error).message).toMatch(
      /declare the queue in the registry exactly as the Python side does/,
    );
    expect(received.map((delivery) => expectDecoded(delivery.result).args)).toEqual([
      ['still works'],
    ]);
    expect((await brokerCounts(vhost.name, clash)).ready).toBe(1);
  });
});

/** kombu's `declare_native_delayed_delivery_exchanges_and_queues`, written out level by level. */
function kombuDelayTopology(queueType: 'quorum' | 'classic', prefix: string, workQueue: string) {
  const name = (suffix: string | number) =>
    prefix ? `${prefix}_celery_delayed_${suffix}` : `celery_delayed_${suffix}`;
  const levels = Array.from({ length: DELAY_BITS }, (_, level) => level);
  // Level N looks at bit N counted from the right: 27 - N words come before it.
  const bit = (level: number, digit: 0 | 1) => `${'*.'.repeat(DELAY_BITS - 1 - level)}${digit}.#`;
  const binding = (source: string, destination: string, kind: string, key: string) => ({
    source_name: source,
    destination_name: destination,
    destination_kind: kind,
    routing_key: key,
    arguments: [],
  });
  return {
    exchanges: [...levels.map(name), name('delivery')].map((exchange) => ({
      name: exchange,
      type: 'topic',
      durable: true,
      auto_delete: false,
      internal: false,
      arguments: [],
    })),
    queues: levels.map((level) => ({
      name: name(level),
      durable: true,
      auto_delete: false,
      arguments: {
        'x-queue-type': queueType,
        'x-overflow': 'reject-publish',
        'x-message-ttl': 2 ** level * 1000,
        'x-dead-letter-exchange': level === 0 ? name('delivery') : name(level - 1),
        ...(queueType === 'quorum' ? { 'x-dead-letter-strategy': 'at-least-once' } : {}),
      },
    })),
    bindings: [
      ...levels.map((level) => binding(name(level), name(level), 'queue', bit(level, 1))),
      ...levels.map((level) =>
        binding(
          name(level),
          level === 0 ? name('delivery') : name(level - 1),
          'exchange',
          bit(level, 0),
        ),
      ),
      binding(name('delivery'), workQueue, 'queue', deliveryBindingKey(workQueue)),
    ],
  };
}

describe('native delayed delivery topology', () => {
  it.each([
    { names: 'default names', delayQueueType: 'quorum', delayPrefix: '' },
    { names: 'default names', delayQueueType: 'classic', delayPrefix: '' },
    { names: 'the prefix sentry', delayQueueType: 'quorum', delayPrefix: 'sentry' },
  ] as const)(
    "declares kombu's 28 levels as $delayQueueType queues with $names",
    async ({ delayQueueType, delayPrefix }) => {
      const own = await makeVhost();
      const queue = uniqueQueue('work');
      const broker = makeBroker({ url: own.url, delayQueueType, delayPrefix });

      await broker.publish([call(queue)]);
      const [queues, exchanges, bindings] = await Promise.all([
        listQueues(own.name),
        listExchanges(own.name),
        listBindings(own.name),
      ]);

      const expected = kombuDelayTopology(delayQueueType, delayPrefix, queue);
      const isDelay = (name: string) => name.includes('celery_delayed_');
      expect(byName(exchanges.filter((e) => isDelay(e.name)))).toEqual(byName(expected.exchanges));
      expect(
        byName(
          queues
            .filter((q) => isDelay(q.name))
            .map((q) => ({
              name: q.name,
              durable: q.durable,
              auto_delete: q.auto_delete,
              arguments: argumentsOf(q),
            })),
        ),
      ).toEqual(byName(expected.queues));
      expect(byRoute(bindings.filter((b) => isDelay(b.source_name)))).toEqual(
        byRoute(expected.bindings),
      );
    },
  );
});

describe('delayed retries', () => {
  it('brings 2 s, 1 s and 90 s retries back on time while no consumer holds them', async ({
    annotate,
  }) => {
    const queue = uniqueQueue('delay');
    const broker = makeBroker();
    await broker.publish([call(queue, ['short']), call(queue, ['long'])]);
    const first = await receiveAll(broker, queue, 2);
    const argOf = (delivery: Delivery) => expectDecoded(delivery.result).args[0];
    const dueAts = new Map<string, number>();
    const retryLater = (delivery: Delivery, ms: number) => {
      const dueAt = new Date(Date.now() + ms);
      const message = createRetryMessage(expectDecoded(delivery.result), dueAt);
      dueAts.set(`${argOf(delivery)}#${message.retries}`, dueAt.getTime());
      return { delivery, settlement: { kind: 'retry-later', message, dueAt } as const };
    };

    await broker.settle(first.map((d) => retryLater(d, argOf(d) === 'short' ? 2_000 : 90_000)));
    const parked = await withRawChannel(async (channel) => ({
      // 2 = 0b10 waits in level 1; 90 = 0b1011010 waits in level 6 first.
      level1: (await channel.checkQueue('celery_delayed_1')).messageCount,
      level6: (await channel.checkQueue('celery_delayed_6')).messageCount,
    }));
    const statsWhileParked = await broker.stats(queue);

    // The short one goes round twice (1 s the second time, with RabbitMQ's x-death headers on it).
    const lateness: Record<string, number> = {};
    const arrived: TaskMessage[] = [];
    let statsWhileLongWaits: unknown;
    let countsWhileLongWaits: unknown;
    const deadline = Date.now() + 100_000;
    while (arrived.length < 3 && Date.now() < deadline) {
      for (const delivery of await broker.receive(queue, { max: 3, waitMs: 1_000 })) {
        const message = expectDecoded(delivery.result);
        const key = `${argOf(delivery)}#${message.retries}`;
        lateness[key] = Date.now() - (dueAts.get(key) ?? Number.NaN);
        arrived.push(message);
        if (key === 'short#1') {
          await broker.settle([retryLater(delivery, 1_000)]);
        } else {
          await broker.settle(done([delivery]));
        }
        if (key === 'short#2') {
          // Slow rabbitmqctl is asked while only the 90 s one waits, 88 s before it is due.
          statsWhileLongWaits = await broker.stats(queue);
          countsWhileLongWaits = await brokerCounts(vhost.name, queue);
        }
      }
    }
    await annotate(`lateness in ms: ${JSON.stringify(lateness)}`);

    expect(parked).toEqual({ level1: 1, level6: 1 });
    expect(statsWhileParked).toMatchObject({ ready: 0, unacked: 0, delayed: 2 });
    expect(statsWhileLongWaits).toMatchObject({ ready: 0, unacked: 0, delayed: 1 });
    expect(countsWhileLongWaits).toEqual({ ready: 0, unacked: 0 });
    expect(Object.keys(lateness).sort()).toEqual(['long#1', 'short#1', 'short#2']);
    for (const late of Object.values(lateness)) {
      // Never early; rounded up to whole seconds, plus the broker's dead-letter hops.
      expect(late).toBeGreaterThanOrEqual(0);
      expect(late).toBeLessThan(1_500);
    }
    expect(arrived.map((message) => [message.args[0], message.retries])).toEqual([
      ['short', 1],
      ['short', 2],
      ['long', 1],
    ]);
    expect(new Set(arrived.map((message) => message.id)).size).toBe(2);
  }, 120_000);
});

/** What `inspect_queue.py` prints per message: the AMQP type tag of every header. */
interface InspectedMessage {
  readonly header_types: Record<string, { readonly type: string; readonly value: unknown }>;
  readonly problems: string[];
}

/** Takes a queue's messages off with py-amqp and validates them as Celery messages. */
async function inspectWithPyAmqp(queue: string): Promise<InspectedMessage[]> {
  const args = [INSPECT_QUEUE, '--broker', vhost.url, '--queue', queue, '--validate', '--take'];
  const { stdout } = await promisify(execFile)(PY, args, { maxBuffer: 16 * 1024 * 1024 });
  return (JSON.parse(stdout) as { messages: InspectedMessage[] }).messages;
}

describe('header wire types', () => {
  it('writes integer headers as the signed 32-bit I py-amqp writes, dead letters included', async () => {
    const queue = uniqueQueue('types');
    const broker = makeBroker();
    await broker.publish([
      call(queue, ['limited'], { timeLimit: [300, 200], retries: 2 }),
      call(queue, ['doomed'], { retries: 3 }),
    ]);
    const deliveries = await receiveAll(broker, queue, 2);
    const doomed = deliveries.filter((d) => expectDecoded(d.result).args[0] === 'doomed');
    await broker.settle([
      {
        delivery: doomed[0] as Delivery,
        settlement: {
          kind: 'dead-letter',
          reason: {
            reason: 'max-retries-exceeded',
            detail: 'gave up',
            task: doWork.name,
            id: null,
            retries: 3,
          },
        },
      },
    ]);
    // Closing gives the held 'limited' message back to the queue for py-amqp to read.
    await broker.close();

    const [limited] = await inspectWithPyAmqp(queue);
    const [dead] = await inspectWithPyAmqp(`${queue}.dlq`);

    expect(limited?.problems).toEqual([]);
    expect(limited?.header_types.retries).toEqual({ type: 'I', value: 2 });
    expect(limited?.header_types.timelimit).toEqual({
      type: 'A',
      value: [
        { type: 'I', value: 300 },
        { type: 'I', value: 200 },
      ],
    });
    expect(dead?.problems).toEqual([]);
    expect(dead?.header_types.retries).toEqual({ type: 'I', value: 3 });
    expect(dead?.header_types['x-sc-dead-retries']).toEqual({ type: 'I', value: 3 });
  });
});

describe('priority', () => {
  it('hands out higher priorities first from a queue declared with maxPriority (RabbitMQ order)', async () => {
    const queue = uniqueQueue('priority');
    const broker = makeBroker({ queues: [{ name: queue, maxPriority: 9 }] });

    await broker.publish(
      [1, 5, 9, 0].map((priority) => call(queue, [`p${priority}`], { priority })),
    );
    const deliveries = await receiveAll(broker, queue, 4);
    await broker.settle(done(deliveries));

    expect(deliveries.map((delivery) => expectDecoded(delivery.result).args[0])).toEqual([
      'p9',
      'p5',
      'p1',
      'p0',
    ]);
  });
});

/** amqplib's connect, with every `basic.ack` the broker sends recorded as `[tag, multiple]`. */
function recordingAcks(): { connect: AmqpConnect; acks: [tag: number, multiple: boolean][] } {
  const acks: [number, boolean][] = [];
  const recording: AmqpConnect = async (url, socketOptions) => {
    const model = await connect(url, socketOptions);
    const createChannel = model.createChannel.bind(model);
    model.createChannel = async () => {
      const channel = await createChannel();
      const ack = channel.ack.bind(channel);
      channel.ack = (message, allUpTo) => {
        acks.push([message.fields.deliveryTag, allUpTo === true]);
        ack(message, allUpTo);
      };
      return channel;
    };
    return model;
  };
  return { connect: recording, acks };
}

describe('acknowledgements', () => {
  it('acks a batch with one multiple ack, one by one while an earlier batch is still held', async () => {
    const queue = uniqueQueue('acks');
    const { connect: recording, acks } = recordingAcks();
    const broker = makeBroker({ connect: recording });
    await broker.publish(Array.from({ length: 6 }, (_, index) => call(queue, [index])));
    const first = await receiveAll(broker, queue, 3);
    const second = await receiveAll(broker, queue, 3);

    await broker.settle(done(second));
    const whileHeld = [...acks];
    const countsWhileHeld = await brokerCounts(vhost.name, queue);
    await broker.settle(done(first));

    expect(second.map((delivery) => expectDecoded(delivery.result).args[0])).toEqual([3, 4, 5]);
    expect(whileHeld).toEqual([
      [4, false],
      [5, false],
      [6, false],
    ]);
    expect(countsWhileHeld).toEqual({ ready: 0, unacked: 3 });
    expect(acks.slice(3)).toEqual([[3, true]]);
    expect(await brokerCounts(vhost.name, queue)).toEqual({ ready: 0, unacked: 0 });
  });

  it('redelivers after close only the batch left unsettled: close waits for the last acks', async () => {
    const queue = uniqueQueue('acks-held');
    const broker = makeBroker();
    await broker.publish(Array.from({ length: 4 }, (_, index) => call(queue, [index])));
    const first = await receiveAll(broker, queue, 2);
    const second = await receiveAll(broker, queue, 2);
    await broker.settle(done(second));

    await broker.close();
    const again = await receiveAll(makeBroker(), queue, 4, 2_000);

    expect(first).toHaveLength(2);
    expect(
      again.map((delivery) => [expectDecoded(delivery.result).args[0], delivery.redelivered]),
    ).toEqual([
      [0, true],
      [1, true],
    ]);
  });
});

describe('connection loss', () => {
  it('reconnects after the broker drops the connection and redelivers what was held', async () => {
    const queue = uniqueQueue('reconnect');
    const broker = makeBroker();
    await broker.publish([call(queue, ['held'])]);
    const held = await receiveAll(broker, queue, 1);

    await closeConnections(vhost.name);
    await broker.publish([call(queue, ['after'])]);
    await broker.settle(done(held));
    const again = await receiveAll(broker, queue, 2);
    await broker.settle(done(again));

    expect(held).toHaveLength(1);
    expect(warnings).toEqual([expect.stringMatching(/closed before settlement/)]);
    expect(
      again.map((delivery) => [expectDecoded(delivery.result).args[0], delivery.redelivered]),
    ).toEqual([
      ['held', true],
      ['after', false],
    ]);
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, unacked: 0 });
  });
});

describe('dead letters', () => {
  it('dead-letters with task, error and retries in x-sc-dead-* headers beside Celery’s own', async () => {
    const queue = uniqueQueue('dead');
    const broker = makeBroker();
    const sent = call(queue, ['poison'], { retries: 2, timeLimit: [30, 20] });
    await broker.publish([sent]);
    const [delivery] = await receiveAll(broker, queue, 1);
    const reason = {
      reason: 'excluded',
      detail: 'FatalError: bad input',
      task: sent.task,
      id: sent.id,
      retries: 2,
      errorType: 'FatalError',
      errorMessage: 'bad input',
    } as const;

    await broker.settle([
      { delivery: delivery as Delivery, settlement: { kind: 'dead-letter', reason } },
    ]);
    const raw = await withRawChannel((channel) => channel.get(`${queue}.dlq`, { noAck: true }));

    expect(raw).not.toBe(false);
    if (raw === false) return;
    expect(raw.properties.headers).toMatchObject({
      task: sent.task,
      id: sent.id,
      retries: 2,
      timelimit: [30, 20],
      'x-sc-dead-reason': 'excluded',
      'x-sc-dead-detail': 'FatalError: bad input',
      'x-sc-dead-task': sent.task,
      'x-sc-dead-id': sent.id,
      'x-sc-dead-retries': 2,
      'x-sc-dead-error-type': 'FatalError',
      'x-sc-dead-error-message': 'bad input',
      'x-sc-dead-queue': queue,
      'x-sc-dead-at': expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(raw.properties).toMatchObject({
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      correlationId: sent.id,
      deliveryMode: 2,
    });
    expect(JSON.parse(raw.content.toString('utf8'))).toEqual([
      ['poison'],
      {},
      { callbacks: null, errbacks: null, chain: null, chord: null },
    ]);
  });

  it('dead-letters as poison a message at its quorum x-delivery-limit instead of letting RabbitMQ drop it', async () => {
    const queue = uniqueQueue('limited');
    const declaration = {
      name: queue,
      arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 2 },
    };
    const sent = call(queue, ['crashes']);
    await makeBroker({ queues: [declaration] }).publish([sent]);

    // Each round a consumer takes the message and dies holding it (its connection closes).
    const rounds: (number | 'none')[] = [];
    for (let round = 0; round < 3; round++) {
      const consumer = makeBroker({ queues: [declaration] });
      const [delivery] = await consumer.receive(queue, { max: 1, waitMs: 1_000 });
      rounds.push(delivery ? (delivery.deliveryCount ?? 0) : 'none');
      await consumer.close();
    }
    const broker = makeBroker({ queues: [declaration] });
    const dead = await broker.deadLetters(queue, 10);

    // RabbitMQ 3.10 delivers with counts none, 1, 2 and drops the message on the next return;
    // the third delivery (count 2 = the limit) is dead-lettered on receipt instead of run.
    expect(rounds).toEqual([0, 1, 'none']);
    expect(dead).toEqual([
      expect.objectContaining({ reason: 'poison', id: sent.id, task: sent.task, queue }),
    ]);
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, unacked: 0, deadLettered: 1 });
  });
});
