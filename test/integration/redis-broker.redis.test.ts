/**
 * The Redis adapter against real Redis (database 12 of 127.0.0.1:6379): kombu's key layout on
 * publish, atomic receive into `unacked`, settling (done, dead-letter, retry later through the
 * delay zset), visibility-timeout restores, the key prefix, stats and dead letters. Connections
 * and command traces are in `redis-connection.redis.test.ts`.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { DeadLetterReason } from '../../src/core/dead-letter.js';
import { createRetryMessage, createTaskMessage } from '../../src/core/message.js';
import { queueDeclarationSchema } from '../../src/core/queue.js';
import { decodeRedisMessage, encodeUnackedEntry } from '../../src/core/redis-codec.js';
import { createRegistry } from '../../src/core/registry.js';
import { runMessage } from '../../src/core/run-task.js';
import { settlementFor, settlementForInvalid } from '../../src/core/settlement.js';
import { defineTask } from '../../src/core/task.js';
import { toTaskOutcome } from '../../src/core/task-outcome.js';
import { processBatch } from '../../src/worker/local-worker.js';
import { expectDecoded, expectDecodeFailure } from '../helpers/decode.js';
import { loadCeleryFixture, type RedisUnackedFixture } from '../helpers/fixtures.js';
import {
  manualClock,
  pythonEnvelope,
  recordingLogger,
  redisBench,
  TEST_TASK,
  taskMessage,
  unackedTagsOf,
} from '../helpers/redis.js';
import { pythonHeaders } from '../helpers/wire.js';

const DB = 12;
const SEP = '\x06\x16';
const bench = redisBench(DB);
const { admin, keys } = bench;

const deadLetterReason = (over: Partial<DeadLetterReason> = {}): DeadLetterReason => ({
  reason: 'not-retryable',
  detail: 'task failed with TypeError',
  task: TEST_TASK,
  id: null,
  retries: 2,
  errorType: 'TypeError',
  errorMessage: 'boom',
  ...over,
});

/** The only item of `items`; fails the test when there are none or several. */
function single<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  return items[0] as T;
}

/** The envelope text of each message in `queue`'s step-0 list, by task id. */
async function envelopesById(queue: string): Promise<Map<string, string>> {
  const raws = await admin.lrange(queue, 0, -1);
  return new Map(raws.map((raw) => [JSON.parse(raw).headers.id as string, raw]));
}

afterEach(() => bench.cleanup());
afterAll(() => bench.close());

describe('publishing', () => {
  it('pushes kombu envelopes with a base64 body, a fresh delivery tag and delivery_info', async () => {
    // Prepare
    const queue = bench.newQueue();
    const sent = [
      taskMessage(queue, { kwargs: { n: 1 } }),
      taskMessage(queue, { kwargs: { n: 2 } }),
    ];

    // Act
    await bench.openBroker().publish(sent);

    // Assess
    const envelopes = (await admin.lrange(queue, 0, -1)).reverse().map((raw) => JSON.parse(raw));
    expect(envelopes.map((envelope) => envelope.headers.id)).toEqual(sent.map((m) => m.id));
    for (const [index, envelope] of envelopes.entries()) {
      expect(envelope['content-type']).toBe('application/json');
      expect(JSON.parse(Buffer.from(envelope.body, 'base64').toString('utf8'))).toEqual([
        sent[index]?.args,
        sent[index]?.kwargs,
        { callbacks: null, errbacks: null, chain: null, chord: null },
      ]);
      expect(envelope.properties).toMatchObject({
        body_encoding: 'base64',
        delivery_tag: expect.stringMatching(/^[0-9a-f-]{36}$/),
        delivery_info: { exchange: '', routing_key: queue },
      });
    }
    expect(envelopes[0].properties.delivery_tag).not.toBe(envelopes[1].properties.delivery_tag);
    expect(await admin.smembers(keys.binding(queue).key)).toEqual([`${queue}${SEP}${SEP}${queue}`]);
  });

  it.each([
    [0, ''],
    [2, ''],
    [3, `${SEP}3`],
    [7, `${SEP}6`],
    [9, `${SEP}9`],
    [255, `${SEP}9`],
  ])('pushes a message of priority %i to the list <queue>%j', async (priority, suffix) => {
    // Prepare
    const queue = bench.newQueue();

    // Act
    await bench.openBroker().publish([taskMessage(queue, { priority })]);

    // Assess
    expect(await admin.llen(`${queue}${suffix}`)).toBe(1);
  });
});

describe('receiving', () => {
  it('takes a batch and records each message in unacked and unacked_index as kombu does', async () => {
    // Prepare
    const queue = bench.newQueue();
    const clock = manualClock();
    const broker = bench.openBroker({}, { now: clock.now });
    await broker.publish([taskMessage(queue), taskMessage(queue), taskMessage(queue)]);
    const envelopes = await envelopesById(queue);

    // Act
    const deliveries = await broker.receive(queue, { max: 2, waitMs: 0 });

    // Assess
    expect(deliveries).toHaveLength(2);
    expect(await admin.llen(queue)).toBe(1);
    for (const delivery of deliveries) {
      const raw = envelopes.get(expectDecoded(delivery.result).id) as string;
      const tag = JSON.parse(raw).properties.delivery_tag;
      expect(await admin.hget(keys.unacked, tag)).toBe(encodeUnackedEntry(raw, '', queue));
      expect(Number(await admin.zscore(keys.unackedIndex, tag))).toBeCloseTo(clock.now() / 1000, 3);
      expect(delivery).toMatchObject({ queue, redelivered: false });
    }
  });

  it('drains priority 0 first and each priority in publishing order, as kombu does', async () => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker();
    const sent = [9, 6, 3, 0, 9, 0].map((priority) => taskMessage(queue, { priority }));
    await broker.publish(sent);

    // Act
    const deliveries = await broker.receive(queue, { max: 10, waitMs: 0 });

    // Assess
    const order = [sent[3], sent[5], sent[2], sent[1], sent[0], sent[4]].map((m) => m?.id);
    expect(deliveries.map((delivery) => expectDecoded(delivery.result).id)).toEqual(order);
  });

  it.each([
    ['is not JSON', () => '{"body": "oops"', 'envelope is not a JSON object'],
    [
      'is a JSON array',
      () => '[1, 2]',
      'envelope lacks properties.delivery_tag or properties.delivery_info',
    ],
    [
      'has no properties.delivery_tag',
      (queue: string) =>
        pythonEnvelope(queue, {}, (envelope) => delete envelope.properties.delivery_tag),
      'envelope lacks properties.delivery_tag or properties.delivery_info',
    ],
    [
      'has no properties.delivery_info',
      (queue: string) =>
        pythonEnvelope(queue, {}, (envelope) => delete envelope.properties.delivery_info),
      'envelope lacks properties.delivery_tag or properties.delivery_info',
    ],
  ])(
    'dead-letters an envelope that %s on receipt and returns the rest',
    async (_, make, detail) => {
      // Prepare
      const queue = bench.newQueue();
      const clock = manualClock();
      const logger = recordingLogger();
      const broker = bench.openBroker({}, { now: clock.now, logger });
      const bad = make(queue);
      await admin.lpush(queue, bad);
      const good = taskMessage(queue);
      await broker.publish([good]);

      // Act
      const deliveries = await broker.receive(queue, { max: 10, waitMs: 0 });

      // Assess
      expect(deliveries.map((delivery) => expectDecoded(delivery.result).id)).toEqual([good.id]);
      expect(await broker.deadLetters(queue, 10)).toEqual([
        {
          reason: 'invalid-message',
          detail,
          queue,
          at: new Date(clock.now()).toISOString(),
          raw: bad,
          task: null,
          id: null,
          retries: null,
        },
      ]);
      expect(await unackedTagsOf(admin, keys, [queue])).toHaveLength(1);
      expect(logger.warnings).toEqual([expect.stringContaining(queue)]);
    },
  );

  it('holds a pickled message as a failed decode, which settle dead-letters with its reason', async () => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker();
    const pickled = pythonEnvelope(queue, { contentType: 'application/x-python-serialize' });
    await admin.lpush(queue, pickled);

    // Act
    const delivery = single(await broker.receive(queue, { max: 10, waitMs: 0 }));
    const failure = expectDecodeFailure(delivery.result);
    const heldBeforeSettle = await unackedTagsOf(admin, keys, [queue]);
    await broker.settle([{ delivery, settlement: settlementForInvalid(failure) }]);

    // Assess
    expect(failure.error.reason).toBe('unsupported-content-type');
    expect(heldBeforeSettle).toHaveLength(1);
    expect(await unackedTagsOf(admin, keys, [queue])).toEqual([]);
    expect(await broker.deadLetters(queue, 10)).toEqual([
      expect.objectContaining({
        reason: 'invalid-message',
        errorType: 'InvalidMessageError',
        task: pythonHeaders().task,
        raw: pickled,
      }),
    ]);
  });

  it('returns a message of an unknown task decoded, for the caller to dead-letter', async () => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker();
    await broker.publish([createTaskMessage({ task: 'sc_test.no_such_task', queue })]);
    const registry = createRegistry({ tasks: [], queues: [{ name: queue }] });

    // Act
    const deliveries = await broker.receive(queue, { max: 10, waitMs: 0 });
    await processBatch(broker, registry, deliveries);

    // Assess
    expect(expectDecoded(single(deliveries).result).task).toBe('sc_test.no_such_task');
    expect(await broker.deadLetters(queue, 10)).toEqual([
      expect.objectContaining({ reason: 'unknown-task', task: 'sc_test.no_such_task' }),
    ]);
    expect(await unackedTagsOf(admin, keys, [queue])).toEqual([]);
  });

  it('waits for a message published while it waits', async () => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker();
    const late = taskMessage(queue);
    setTimeout(() => void bench.openBroker().publish([late]), 100);

    // Act
    const deliveries = await broker.receive(queue, { max: 10, waitMs: 20_000 });

    // Assess
    expect(deliveries.map((delivery) => expectDecoded(delivery.result).id)).toEqual([late.id]);
  });

  it('ends an empty wait even when the injected clock stands still', async () => {
    // Prepare
    const broker = bench.openBroker({}, { now: manualClock().now });

    // Act
    const deliveries = await broker.receive(bench.newQueue(), { max: 10, waitMs: 300 });

    // Assess
    expect(deliveries).toEqual([]);
  });
});

describe('settling', () => {
  it('done removes the message from unacked and unacked_index', async () => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker();
    await broker.publish([taskMessage(queue)]);
    const delivery = single(await broker.receive(queue, { max: 1, waitMs: 0 }));
    const [tag] = await unackedTagsOf(admin, keys, [queue]);

    // Act
    await broker.settle([{ delivery, settlement: { kind: 'done' } }]);

    // Assess
    expect(await admin.hexists(keys.unacked, tag as string)).toBe(0);
    expect(await admin.zscore(keys.unackedIndex, tag as string)).toBeNull();
    expect(await broker.stats(queue)).toEqual({
      queue,
      ready: 0,
      unacked: 0,
      delayed: 0,
      deadLettered: 0,
    });
  });

  it.each([
    { where: 'its <queue>.dlq', declared: false },
    { where: 'the dead-letter queue it was declared with', declared: true },
  ])('dead-letter moves the envelope with its reason to $where', async ({ declared }) => {
    // Prepare
    const queue = bench.newQueue();
    const deadLetterQueue = declared ? bench.newQueue() : `${queue}.dlq`;
    const clock = manualClock();
    const queues = declared ? [queueDeclarationSchema.parse({ name: queue, deadLetterQueue })] : [];
    const broker = bench.openBroker({}, { now: clock.now, queues });
    await broker.publish([taskMessage(queue)]);
    const raw = await admin.lindex(queue, 0);
    const delivery = single(await broker.receive(queue, { max: 1, waitMs: 0 }));
    const reason = deadLetterReason({ id: expectDecoded(delivery.result).id });

    // Act
    await broker.settle([{ delivery, settlement: { kind: 'dead-letter', reason } }]);

    // Assess
    const entry = { ...reason, queue, at: new Date(clock.now()).toISOString(), raw };
    expect(await broker.deadLetters(queue, 10)).toEqual([entry]);
    expect(await admin.llen(keys.deadLetter(deadLetterQueue))).toBe(1);
    expect(await unackedTagsOf(admin, keys, [queue])).toEqual([]);
  });

  it('retry-later parks the retry in the delay zset until promoted when due', async () => {
    // Prepare
    const queue = bench.newQueue();
    const clock = manualClock();
    const broker = bench.openBroker({}, { now: clock.now });
    await broker.publish([taskMessage(queue)]);
    const delivery = single(await broker.receive(queue, { max: 1, waitMs: 0 }));
    const original = expectDecoded(delivery.result);
    const dueAt = new Date(clock.now() + 60_000);
    const retry = createRetryMessage(original, dueAt);

    // Act
    await broker.settle([{ delivery, settlement: { kind: 'retry-later', message: retry, dueAt } }]);
    const parked = await admin.zrange(keys.delayed(queue), 0, '-1');
    const parkedScore = await admin.zscore(keys.delayed(queue), parked[0] as string);
    const statsWhileParked = await broker.stats(queue);
    const promotedEarly = await broker.promoteDue(queue);
    clock.advance(60_000);
    const promotedWhenDue = await broker.promoteDue(queue);
    const again = single(await broker.receive(queue, { max: 10, waitMs: 0 }));

    // Assess
    expect(parked).toHaveLength(1);
    expect(Number(parkedScore)).toBe(dueAt.getTime());
    const parkedMessage = expectDecoded(decodeRedisMessage((parked[0] as string).slice(1)));
    for (const message of [parkedMessage, expectDecoded(again.result)]) {
      expect(message).toMatchObject({ id: original.id, retries: 1, parentId: original.id });
      expect(message.eta?.getTime()).toBe(dueAt.getTime());
    }
    expect(statsWhileParked).toMatchObject({ ready: 0, unacked: 0, delayed: 1 });
    expect([promotedEarly, promotedWhenDue]).toEqual([0, 1]);
  });

  it.each([
    [0, ''],
    [7, `${SEP}6`],
  ])('promotes a retry of priority %i back to the list <queue>%j', async (priority, suffix) => {
    // Prepare
    const queue = bench.newQueue();
    const clock = manualClock();
    const broker = bench.openBroker({}, { now: clock.now });
    await broker.publish([taskMessage(queue, { priority })]);
    const delivery = single(await broker.receive(queue, { max: 1, waitMs: 0 }));
    const dueAt = new Date(clock.now() + 1000);
    const retry = createRetryMessage(expectDecoded(delivery.result), dueAt);
    await broker.settle([{ delivery, settlement: { kind: 'retry-later', message: retry, dueAt } }]);
    clock.advance(1000);

    // Act
    await broker.promoteDue(queue);

    // Assess
    expect(await admin.llen(`${queue}${suffix}`)).toBe(1);
    expect(await admin.zcard(keys.delayed(queue))).toBe(0);
  });

  it('retry-later due already puts the message straight back in its queue', async () => {
    // Prepare
    const queue = bench.newQueue();
    const clock = manualClock();
    const broker = bench.openBroker({}, { now: clock.now });
    await broker.publish([taskMessage(queue)]);
    const delivery = single(await broker.receive(queue, { max: 1, waitMs: 0 }));
    const dueAt = new Date(clock.now());
    const retry = createRetryMessage(expectDecoded(delivery.result), dueAt);

    // Act
    await broker.settle([{ delivery, settlement: { kind: 'retry-later', message: retry, dueAt } }]);

    // Assess
    expect(await broker.stats(queue)).toMatchObject({ ready: 1, unacked: 0, delayed: 0 });
  });

  it('runs a message whose eta is beyond the visibility timeout exactly once', async () => {
    // Prepare
    const queue = bench.newQueue();
    const clock = manualClock();
    const runs: number[] = [];
    const task = defineTask({ name: TEST_TASK, queue }, () => {
      runs.push(clock.now());
    });
    const registry = createRegistry({ tasks: [task], queues: [{ name: queue }] });
    const broker = bench.openBroker({ visibilityTimeout: 1 }, { now: clock.now });
    const eta = new Date(clock.now() + 3_600_000);
    await broker.publish([task.createMessage({ eta }, new Date(clock.now()))]);

    // Act: a worker's loop over two simulated hours, ten minutes a turn.
    for (let turn = 0; turn < 12; turn++) {
      await broker.restoreStale();
      await broker.promoteDue(queue);
      for (const delivery of await broker.receive(queue, { max: 10, waitMs: 0 })) {
        const message = expectDecoded(delivery.result);
        const outcome = await runMessage(registry, message, { now: clock.now });
        await broker.settle([
          { delivery, settlement: settlementFor(toTaskOutcome(outcome), message) },
        ]);
      }
      clock.advance(600_000);
    }

    // Assess
    expect(runs).toHaveLength(1);
    expect(runs[0]).toBeGreaterThanOrEqual(eta.getTime());
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, unacked: 0, delayed: 0 });
  });

  it.each([
    ['in two calls', true],
    ['in one call, which then settles nothing', false],
  ])('refuses to settle a delivery twice %s', async (_, settleFirst) => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker();
    await broker.publish([taskMessage(queue)]);
    const delivery = single(await broker.receive(queue, { max: 1, waitMs: 0 }));
    const item = {
      delivery,
      settlement: { kind: 'dead-letter', reason: deadLetterReason() },
    } as const;
    if (settleFirst) await broker.settle([item]);

    // Act
    const again = broker.settle(settleFirst ? [item] : [item, item]);

    // Assess
    await expect(again).rejects.toThrow(/already settled/);
    expect(await broker.stats(queue)).toMatchObject({
      unacked: settleFirst ? 0 : 1,
      deadLettered: settleFirst ? 1 : 0,
    });
  });
});

describe('visibility timeout', () => {
  it.each([
    [0, ''],
    [9, `${SEP}9`],
  ])(
    'restores a priority %i message held by a dead consumer to <queue>%j, flagged redelivered',
    async (priority, suffix) => {
      // Prepare
      const queue = bench.newQueue();
      const clock = manualClock();
      const config = { visibilityTimeout: 1 };
      const crashed = bench.openBroker(config, { now: clock.now });
      const survivor = bench.openBroker(config, { now: clock.now });
      await crashed.publish([taskMessage(queue, { priority })]);
      const held = single(await crashed.receive(queue, { max: 1, waitMs: 0 }));
      const [tag] = await unackedTagsOf(admin, keys, [queue]);
      await crashed.close();

      // Act
      clock.advance(500);
      const restoredEarly = await survivor.restoreStale();
      clock.advance(1000);
      const restoredLate = await survivor.restoreStale();

      // Assess
      expect([restoredEarly, restoredLate]).toEqual([0, 1]);
      expect(await unackedTagsOf(admin, keys, [queue])).toEqual([]);
      const envelope = JSON.parse((await admin.lindex(`${queue}${suffix}`, 0)) as string);
      expect(envelope.headers.redelivered).toBe(true);
      expect(envelope.properties.delivery_info).toEqual({
        exchange: '',
        routing_key: queue,
        redelivered: true,
      });
      expect(envelope.properties.delivery_tag).toBe(tag);
      const again = single(await survivor.receive(queue, { max: 1, waitMs: 0 }));
      expect(again.redelivered).toBe(true);
      expect(expectDecoded(again.result).id).toBe(expectDecoded(held.result).id);
    },
  );

  it("restores only while holding kombu's unacked_mutex, and releases it", async () => {
    // Prepare
    const queue = bench.newQueue();
    const clock = manualClock();
    const broker = bench.openBroker({ visibilityTimeout: 1 }, { now: clock.now });
    await broker.publish([taskMessage(queue)]);
    await broker.receive(queue, { max: 1, waitMs: 0 });
    clock.advance(2000);
    await admin.set(keys.unackedMutex, 'python-worker', 'PX', 10_000);

    // Act
    const whileHeldElsewhere = await broker.restoreStale();
    const mutexAfterward = await admin.get(keys.unackedMutex);
    await admin.del(keys.unackedMutex);
    const onceFree = await broker.restoreStale();

    // Assess
    expect(whileHeldElsewhere).toBe(0);
    expect(mutexAfterward).toBe('python-worker');
    expect(onceFree).toBe(1);
    expect(await admin.exists(keys.unackedMutex)).toBe(0);
    expect(await broker.stats(queue)).toMatchObject({ ready: 1, unacked: 0 });
  });

  it('takes the mutex for 30 s, so a restorer killed mid-pass holds up restores 30 s, not 300', async () => {
    // Prepare
    const broker = bench.openBroker();
    const monitor = await admin.duplicate().monitor();
    const sets: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'set' && args[1] === keys.unackedMutex) sets.push(args);
    });

    // Act
    await broker.restoreStale();
    await new Promise((resolve) => setTimeout(resolve, 50));
    monitor.disconnect();

    // Assess
    expect(sets).toEqual([['set', keys.unackedMutex, expect.any(String), 'PX', '30000', 'NX']]);
  });

  it('restores an entry a crashed kombu worker left in unacked as kombu would', async () => {
    // Prepare
    const queue = bench.newQueue();
    const clock = manualClock();
    const broker = bench.openBroker({ visibilityTimeout: 1 }, { now: clock.now });
    const fixture = loadCeleryFixture<RedisUnackedFixture>('redis-unacked-entry');
    const [tag, captured] = single(Object.entries(fixture.unacked).slice(0, 1));
    // Routed to this test's queue; Python's spacing and everything else kept.
    const envelope = captured.message.raw.replace(
      `"routing_key": "${captured.routing_key}"`,
      `"routing_key": "${queue}"`,
    );
    await admin.hset(keys.unacked, tag, encodeUnackedEntry(envelope, '', queue));
    await admin.zadd(keys.unackedIndex, clock.now() / 1000 - 5, tag);

    // Act
    const restored = await broker.restoreStale();

    // Assess
    expect(restored).toBe(1);
    const kombu = JSON.parse(envelope);
    expect(JSON.parse((await admin.lindex(queue, 0)) as string)).toEqual({
      ...kombu,
      headers: { ...kombu.headers, redelivered: true },
      properties: {
        ...kombu.properties,
        delivery_info: { ...kombu.properties.delivery_info, redelivered: true },
      },
    });
    const delivery = single(await broker.receive(queue, { max: 1, waitMs: 0 }));
    expect(delivery.redelivered).toBe(true);
    expect(expectDecoded(delivery.result).id).toBe(kombu.headers.id);
  });
});

describe('stats and dead letters', () => {
  it('counts the ready, unacked, delayed and dead-lettered messages of one queue', async () => {
    // Prepare
    const [queue, neighbour] = [bench.newQueue(), bench.newQueue()];
    const clock = manualClock();
    const broker = bench.openBroker({}, { now: clock.now });
    await broker.publish([...Array(5)].map(() => taskMessage(queue)));
    await broker.publish([taskMessage(neighbour, { priority: 9 }), taskMessage(neighbour)]);
    await broker.receive(neighbour, { max: 1, waitMs: 0 });
    const [dead, parked] = await broker.receive(queue, { max: 3, waitMs: 0 });
    if (!dead || !parked) throw new Error('expected three deliveries');
    const dueAt = new Date(clock.now() + 60_000);
    const retry = createRetryMessage(expectDecoded(parked.result), dueAt);
    await broker.settle([
      { delivery: dead, settlement: { kind: 'dead-letter', reason: deadLetterReason() } },
      { delivery: parked, settlement: { kind: 'retry-later', message: retry, dueAt } },
    ]);

    // Act
    const stats = await Promise.all([broker.stats(queue), broker.stats(neighbour)]);

    // Assess
    expect(stats).toEqual([
      { queue, ready: 2, unacked: 1, delayed: 1, deadLettered: 1 },
      { queue: neighbour, ready: 1, unacked: 1, delayed: 0, deadLettered: 0 },
    ]);
  });

  it.each([
    [0, []],
    [2, ['third', 'second']],
    [10, ['third', 'second', 'first']],
  ])('lists the newest %i dead letters, newest first', async (limit, expected) => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker();
    await broker.publish([taskMessage(queue), taskMessage(queue), taskMessage(queue)]);
    for (const detail of ['first', 'second', 'third']) {
      const delivery = single(await broker.receive(queue, { max: 1, waitMs: 0 }));
      const reason = deadLetterReason({ detail });
      await broker.settle([{ delivery, settlement: { kind: 'dead-letter', reason } }]);
    }

    // Act
    const entries = await broker.deadLetters(queue, limit);

    // Assess
    expect(entries.map((entry) => entry.detail)).toEqual(expected);
  });
});
