/**
 * The cron function with its tick lock on real Redis (database 8 of 127.0.0.1:6379): one message
 * per tick however many triggers overlap, the lock key living one interval, and a tick given
 * back when publishing fails. On RabbitMQ (a throw-away vhost) the default lock is the broker
 * itself. Every task name (hence lock key) is unique to its test.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { Delivery } from '../../src/brokers/broker.js';
import { BrokerError } from '../../src/core/errors.js';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import {
  type CronResult,
  createCronHandler,
  redisTickLock,
} from '../../src/lambda/cron-handler.js';
import { createRuntime, type LambdaRuntime } from '../../src/lambda/runtime.js';
import { expectDecoded } from '../helpers/decode.js';
import { fakeContext } from '../helpers/lambda.js';
import { argumentsOf, createTestVhost, listQueues } from '../helpers/rabbitmq.js';
import { redisBench, redisUrl } from '../helpers/redis.js';

const DB = 8;
const bench = redisBench(DB);
const runtimes: LambdaRuntime[] = [];
const lockKeys: string[] = [];
const TICK = '2026-03-01T10:15:00.000Z';

/** A cron task of its own (`*∕5 * * * *`) on a queue of its own, and the lock key of {@link TICK}. */
function app(brokerUrl = redisUrl(DB)) {
  const queue = bench.newQueue();
  const name = `it.cron_${randomUUID().replaceAll('-', '')}`;
  const task = defineTask({ name, queue, cron: '*/5 * * * *' }, () => null);
  const registry = createRegistry({ tasks: [task], queues: [{ name: queue }] });
  const runtime = createRuntime({ registry, broker: brokerUrl });
  runtimes.push(runtime);
  const lockKey = `_sc.cron.${name}.${TICK}`;
  lockKeys.push(lockKey);
  /** A new function instance (its own lock connection), as another Lambda container. */
  const instance = (runtimeOf = runtime) =>
    createCronHandler(runtimeOf, name, { lock: redisTickLock(redisUrl(DB)) });
  return { queue, name, runtime, lockKey, instance };
}

afterEach(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.broker().close();
  const keys = lockKeys.splice(0);
  if (keys.length > 0) await bench.admin.del(...keys);
  await bench.cleanup();
});
afterAll(() => bench.close());

describe('the cron function on real Redis', () => {
  it("publishes the task's message once for triggers of one tick that overlap", async () => {
    // Prepare
    const { queue, name, runtime, instance } = app();
    const triggers = [instance(), instance(), instance()];
    const event = { time: '2026-03-01T10:15:00Z' };
    const before = Date.now();

    // Act
    const results: CronResult[] = await Promise.all(
      triggers.map((handler) => handler(event, fakeContext())),
    );

    // Assess
    const after = Date.now();
    const published = results.flatMap((result) => (result.published ? [result.id] : []));
    expect(published).toHaveLength(1);
    expect(results.map((result) => result.tick)).toEqual([TICK, TICK, TICK]);
    const deliveries = await runtime.broker().receive(queue, { max: 10, waitMs: 0 });
    expect(deliveries).toHaveLength(1);
    const [delivery] = deliveries as [Delivery];
    const message = expectDecoded(delivery.result);
    expect(message).toMatchObject({ task: name, id: published[0] });
    // Celery beat's default expiry: one interval of the schedule (5 minutes) from publishing.
    expect(message.expires?.getTime()).toBeGreaterThanOrEqual(before + 300_000);
    expect(message.expires?.getTime()).toBeLessThanOrEqual(after + 300_000);
    await runtime.broker().settle([{ delivery, settlement: { kind: 'done' } }]);
  });

  it('publishes nothing for a later trigger of the same tick', async () => {
    // Prepare
    const { queue, runtime, instance } = app();
    await instance()({ time: '2026-03-01T10:15:00Z' }, fakeContext());

    // Act
    const late = await instance()({ time: '2026-03-01T10:15:40Z' }, fakeContext());

    // Assess
    expect(late).toEqual({
      published: false,
      tick: TICK,
      reason: 'already published for this tick',
    });
    expect(await runtime.broker().stats(queue)).toMatchObject({ ready: 1 });
  });

  it('keeps the lock key for one interval of the schedule', async () => {
    // Prepare
    const { lockKey, instance } = app();

    // Act
    await instance()({ time: '2026-03-01T10:15:00Z' }, fakeContext());

    // Assess
    const ttl = await bench.admin.ttl(lockKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
  });

  it('gives the tick back when the broker is unreachable, so a retried trigger publishes it', async () => {
    // Prepare
    const { queue, runtime, lockKey, instance } = app();
    const down = createRuntime({ registry: runtime.registry, broker: 'redis://127.0.0.1:1/0' });
    runtimes.push(down);
    const event = { time: '2026-03-01T10:15:00Z' };

    // Act
    const failed = instance(down)(event, fakeContext());
    await expect(failed).rejects.toThrow(BrokerError);
    const keptAfterFailure = await bench.admin.exists(lockKey);
    const retried = await instance()(event, fakeContext());

    // Assess
    expect(keptAfterFailure).toBe(0);
    expect(retried).toMatchObject({ published: true, tick: TICK });
    expect(await runtime.broker().stats(queue)).toMatchObject({ ready: 1 });
  });
});

describe('the cron function on RabbitMQ', () => {
  it('locks each tick in the broker itself when no CRON_LOCK_URL is set', async () => {
    // Prepare
    const vhost = await createTestVhost();
    vi.stubEnv('BROKER_URL', vhost.url);
    vi.stubEnv('CRON_LOCK_URL', '');
    try {
      const { queue, name, runtime } = app(vhost.url);
      const triggers = [1, 2, 3].map(() => createCronHandler(runtime, name));
      const event = { time: '2026-03-01T10:15:00Z' };

      // Act
      const results = await Promise.all(triggers.map((handler) => handler(event, fakeContext())));
      const late = await createCronHandler(runtime, name)(
        { time: '2026-03-01T10:15:40Z' },
        fakeContext(),
      );

      // Assess
      expect(results.filter((result) => result.published)).toHaveLength(1);
      expect(late).toMatchObject({ published: false, tick: TICK });
      expect(await runtime.broker().stats(queue)).toMatchObject({ ready: 1 });
      const lock = (await listQueues(vhost.name)).find(
        (listed) => listed.name === `_sc.cron.${name}.${TICK}`,
      );
      expect(argumentsOf(lock)).toMatchObject({ 'x-expires': 300_000, 'x-max-length': 1 });
    } finally {
      for (const runtime of runtimes.splice(0)) await runtime.broker().close();
      vi.unstubAllEnvs();
      await vhost.remove();
    }
  });
});
