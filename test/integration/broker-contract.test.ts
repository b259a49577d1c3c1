/**
 * The Broker contract, one suite for every broker (`BROKERS=redis,redis-cluster,redis-cluster-3,
 * rabbitmq`): Redis, a one-node Redis Cluster (ElastiCache Serverless' shape), a three-master
 * one, RabbitMQ.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Broker, Delivery } from '../../src/brokers/broker.js';
import { createRetryMessage } from '../../src/core/message.js';
import { defineTask } from '../../src/core/task.js';
import {
  type BrokerHarness,
  createHarness,
  HARNESSES,
  harnessSkip,
  stopHarnessServers,
} from '../helpers/brokers.js';

const doWork = defineTask({ name: 'sentry.tasks.do_work' }, () => null);

/** Receives until `count` deliveries arrived or `timeoutMs` passed, promoting due delays. */
async function receiveAll(
  harness: BrokerHarness,
  broker: Broker,
  count: number,
  timeoutMs = 10_000,
): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  const deadline = Date.now() + timeoutMs;
  while (deliveries.length < count && Date.now() < deadline) {
    await harness.promote(broker);
    deliveries.push(
      ...(await broker.receive(harness.queue, { max: count - deliveries.length, waitMs: 200 })),
    );
  }
  return deliveries;
}

function messageOf(delivery: Delivery | undefined) {
  if (!delivery?.result.ok)
    throw new Error(`expected a decoded message, got ${JSON.stringify(delivery?.result)}`);
  return delivery.result.message;
}

afterAll(() => stopHarnessServers());

for (const kind of HARNESSES) {
  const skip = harnessSkip(kind);
  describe.skipIf(skip !== undefined)(`the ${kind} broker${skip ? ` (${skip})` : ''}`, () => {
    let harness: BrokerHarness;
    let broker: Broker;

    beforeEach(async () => {
      harness = await createHarness(kind);
      broker = harness.broker();
    });

    afterEach(async () => {
      await harness.cleanup();
    });

    const call = (args: unknown[] = [], extra: Parameters<typeof doWork.createMessage>[0] = {}) =>
      doWork.createMessage({ queue: harness.queue, args: args as never, ...extra });

    it('delivers a published message with its fields intact', async () => {
      const sent = call([1, 'two'], { kwargs: { user_id: 42 }, priority: 3 });

      await broker.publish([sent]);
      const [delivery] = await receiveAll(harness, broker, 1);

      expect(delivery?.queue).toBe(harness.queue);
      expect(delivery?.redelivered).toBe(false);
      expect(messageOf(delivery)).toMatchObject({
        id: sent.id,
        task: 'sentry.tasks.do_work',
        args: [1, 'two'],
        kwargs: { user_id: 42 },
        retries: 0,
        rootId: sent.id,
        priority: 3,
      });
      await broker.settle([{ delivery: delivery as Delivery, settlement: { kind: 'done' } }]);
    });

    it('publishes a batch and delivers every message once', async () => {
      const sent = Array.from({ length: 50 }, (_, index) => call([index]));

      await broker.publish(sent);
      const deliveries = await receiveAll(harness, broker, 50);
      await broker.settle(
        deliveries.map((delivery) => ({ delivery, settlement: { kind: 'done' } })),
      );

      expect(deliveries.map((delivery) => messageOf(delivery).id).sort()).toEqual(
        sent.map((message) => message.id).sort(),
      );
      expect(await broker.receive(harness.queue, { max: 10, waitMs: 300 })).toEqual([]);
    });

    it('returns nothing from an empty queue once the wait is over', async () => {
      expect(await broker.receive(harness.queue, { max: 5, waitMs: 300 })).toEqual([]);
    });

    it('hands a message published during the wait to the waiting receiver', async () => {
      await broker.receive(harness.queue, { max: 1, waitMs: 0 });
      const waiting = broker.receive(harness.queue, { max: 1, waitMs: 5_000 });
      const producer = harness.broker();

      await producer.publish([call(['late'])]);
      const deliveries = await waiting;

      expect(deliveries.map((delivery) => messageOf(delivery).args)).toEqual([['late']]);
      await broker.settle(
        deliveries.map((delivery) => ({ delivery, settlement: { kind: 'done' } })),
      );
    });

    it('removes a message settled as done for good', async () => {
      await broker.publish([call()]);
      const deliveries = await receiveAll(harness, broker, 1);

      await broker.settle(
        deliveries.map((delivery) => ({ delivery, settlement: { kind: 'done' } })),
      );

      expect(await broker.stats(harness.queue)).toMatchObject({
        ready: 0,
        unacked: 0,
        deadLettered: 0,
      });
      const survivor = harness.broker();
      await harness.crash(broker, survivor);
      expect(await survivor.receive(harness.queue, { max: 1, waitMs: 300 })).toEqual([]);
    });

    it('gives back the messages of a consumer that died holding them, marked redelivered', async () => {
      const sent = [call(['a']), call(['b'])];
      await broker.publish(sent);
      const held = await receiveAll(harness, broker, 2);
      const survivor = harness.broker();

      await harness.crash(broker, survivor);
      const again = await receiveAll(harness, survivor, 2);

      expect(held).toHaveLength(2);
      expect(again.map((delivery) => messageOf(delivery).id).sort()).toEqual(
        sent.map((message) => message.id).sort(),
      );
      expect(again.every((delivery) => delivery.redelivered)).toBe(true);
      await survivor.settle(again.map((delivery) => ({ delivery, settlement: { kind: 'done' } })));
    });

    it('parks a retry and delivers it when due, not before', async () => {
      await broker.publish([call(['flaky'])]);
      const [delivery] = await receiveAll(harness, broker, 1);
      const original = messageOf(delivery);
      const dueAt = new Date(Date.now() + 2_000);

      await broker.settle([
        {
          delivery: delivery as Delivery,
          settlement: { kind: 'retry-later', message: createRetryMessage(original, dueAt), dueAt },
        },
      ]);
      await harness.promote(broker);
      const early = await broker.receive(harness.queue, { max: 1, waitMs: 0 });
      const stats = await broker.stats(harness.queue);
      const [retry] = await receiveAll(harness, broker, 1, 10_000);
      const arrivedAt = Date.now();

      expect(early).toEqual([]);
      expect(stats).toMatchObject({ ready: 0, unacked: 0, delayed: 1 });
      expect(arrivedAt).toBeGreaterThanOrEqual(dueAt.getTime());
      expect(messageOf(retry)).toMatchObject({
        id: original.id,
        retries: 1,
        parentId: original.id,
        rootId: original.id,
        args: ['flaky'],
      });
      await broker.settle([{ delivery: retry as Delivery, settlement: { kind: 'done' } }]);
    });

    it('delivers a retry that is already due at once', async () => {
      await broker.publish([call()]);
      const [delivery] = await receiveAll(harness, broker, 1);
      const dueAt = new Date(Date.now() - 1_000);

      await broker.settle([
        {
          delivery: delivery as Delivery,
          settlement: {
            kind: 'retry-later',
            message: createRetryMessage(messageOf(delivery), dueAt),
            dueAt,
          },
        },
      ]);
      const again = await broker.receive(harness.queue, { max: 1, waitMs: 2_000 });

      expect(messageOf(again[0]).retries).toBe(1);
      await broker.settle(again.map((item) => ({ delivery: item, settlement: { kind: 'done' } })));
    });

    it('dead-letters a message with its reason and keeps the original', async () => {
      const sent = call(['poison']);
      await broker.publish([sent]);
      const [delivery] = await receiveAll(harness, broker, 1);
      const reason = {
        reason: 'excluded',
        detail: 'FatalError: bad input',
        task: sent.task,
        id: sent.id,
        retries: 0,
        errorType: 'FatalError',
        errorMessage: 'bad input',
      } as const;

      await broker.settle([
        { delivery: delivery as Delivery, settlement: { kind: 'dead-letter', reason } },
      ]);
      const entries = await broker.deadLetters(harness.queue, 10);

      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ ...reason, queue: harness.queue });
      expect(entries[0]?.raw).toContain('poison');
      expect(await broker.stats(harness.queue)).toMatchObject({
        ready: 0,
        unacked: 0,
        deadLettered: 1,
      });
      expect(await broker.receive(harness.queue, { max: 1, waitMs: 300 })).toEqual([]);
    });

    it('hands an undecodable message over as a failure to dead-letter, and goes on', async () => {
      await harness.publishRaw({
        contentType: 'application/x-python-serialize',
        body: 'not really pickle',
        headers: { task: 'sentry.tasks.do_work', id: 'pickled-1' },
      });
      await broker.publish([call(['good'])]);

      const deliveries = await receiveAll(harness, broker, 2);
      const bad = deliveries.find((delivery) => !delivery.result.ok);
      const good = deliveries.find((delivery) => delivery.result.ok);

      expect(bad?.result).toMatchObject({
        ok: false,
        id: 'pickled-1',
        task: 'sentry.tasks.do_work',
      });
      expect(messageOf(good).args).toEqual(['good']);
      await broker.settle([
        { delivery: good as Delivery, settlement: { kind: 'done' } },
        {
          delivery: bad as Delivery,
          settlement: {
            kind: 'dead-letter',
            reason: {
              reason: 'invalid-message',
              detail: 'pickle',
              task: 'sentry.tasks.do_work',
              id: 'pickled-1',
              retries: null,
            },
          },
        },
      ]);
      expect((await broker.deadLetters(harness.queue, 10)).map((entry) => entry.id)).toEqual([
        'pickled-1',
      ]);
    });

    async function deadLetterAll(messages: ReturnType<typeof call>[]) {
      await broker.publish(messages);
      const deliveries = await receiveAll(harness, broker, messages.length);
      await broker.settle(
        deliveries.map((delivery) => ({
          delivery,
          settlement: {
            kind: 'dead-letter',
            reason: {
              reason: 'excluded',
              detail: 'bug',
              task: messageOf(delivery).task,
              id: messageOf(delivery).id,
              retries: messageOf(delivery).retries,
            },
          },
        })),
      );
    }

    it('replays a dead letter to its queue with the same id and retries reset', async () => {
      const original = {
        ...call(['replay-me']),
        retries: 2,
        expires: new Date(Date.now() - 1_000),
      };
      await deadLetterAll([original]);

      const replayed = await broker.replayDeadLetters(harness.queue);
      const [again] = await receiveAll(harness, broker, 1);

      expect(replayed).toBe(1);
      expect(messageOf(again)).toMatchObject({
        id: original.id,
        args: ['replay-me'],
        retries: 0,
        expires: null,
        eta: null,
      });
      expect(await broker.deadLetters(harness.queue, 10)).toEqual([]);
      await broker.settle([{ delivery: again as Delivery, settlement: { kind: 'done' } }]);
    });

    it('replays and purges only the dead letters of one task, up to a limit', async () => {
      const other = defineTask({ name: 'sentry.tasks.other' }, () => null);
      const mine = [call(['a']), call(['b']), call(['c'])];
      const theirs = other.createMessage({ queue: harness.queue });
      await deadLetterAll([...mine, theirs]);

      const replayed = await broker.replayDeadLetters(harness.queue, {
        task: 'sentry.tasks.do_work',
        limit: 2,
      });
      const back = await receiveAll(harness, broker, 2);
      const purged = await broker.purgeDeadLetters(harness.queue, { task: 'sentry.tasks.other' });
      const left = await broker.deadLetters(harness.queue, 10);
      const purgedRest = await broker.purgeDeadLetters(harness.queue);

      expect(replayed).toBe(2);
      expect(back.every((delivery) => messageOf(delivery).task === 'sentry.tasks.do_work')).toBe(
        true,
      );
      expect(purged).toBe(1);
      expect(left.map((entry) => entry.task)).toEqual(['sentry.tasks.do_work']);
      expect(purgedRest).toBe(1);
      expect(await broker.deadLetters(harness.queue, 10)).toEqual([]);
      await broker.settle(back.map((delivery) => ({ delivery, settlement: { kind: 'done' } })));
    });

    it('refuses to settle the same delivery twice', async () => {
      await broker.publish([call()]);
      const [delivery] = await receiveAll(harness, broker, 1);
      const item = { delivery: delivery as Delivery, settlement: { kind: 'done' } as const };

      await broker.settle([item]);

      await expect(broker.settle([item])).rejects.toThrow(/already settled/);
    });

    it('refuses a delivery repeated within one settle and keeps holding it', async () => {
      await broker.publish([call()]);
      const [delivery] = await receiveAll(harness, broker, 1);
      const item = { delivery: delivery as Delivery, settlement: { kind: 'done' } as const };

      await expect(broker.settle([item, item])).rejects.toThrow(/already settled/);

      // Still held: the refused call settled nothing, so settling it once now succeeds.
      await expect(broker.settle([item])).resolves.toBeUndefined();
    });
  });
}
