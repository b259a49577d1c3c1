/**
 * The deployed poller's visibility timeout on the real Redis: a runtime built from the
 * poller's environment (`BROKER_VISIBILITY_TIMEOUT=960`, serverless.yml) restores a message held
 * 1000 s, which kombu's default of 3600 s would leave stranded; a `?visibility_timeout=` in
 * `BROKER_URL` wins over the variable.
 *
 * Database 12, one queue per test; only this test's keys and `unacked` entries are removed.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { createRegistry } from '../../src/core/registry.js';
import { createRuntime } from '../../src/lambda/runtime.js';
import {
  deleteQueueKeys,
  redisUrl,
  taskMessage,
  unackedTagsOf,
  uniqueQueue,
} from '../helpers/redis.js';

const KEYS = new RedisKeys();

let admin: Redis;
let queue: string;
let broker: Broker | undefined;

beforeAll(() => {
  admin = new Redis(redisUrl(12), { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await admin.quit();
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await broker?.close();
  broker = undefined;
  await deleteQueueKeys(admin, KEYS, [queue]);
});

/** A broker as the poller's runtime builds it, holding one message received 1000 s ago. */
async function holdingForAWhile(env: Record<string, string>): Promise<Broker> {
  queue = uniqueQueue();
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  const registry = createRegistry({ tasks: [], queues: [{ name: queue }] });
  broker = createRuntime({ registry }).broker();
  await broker.publish([taskMessage(queue)]);
  expect(await broker.receive(queue, { max: 1, waitMs: 0 })).toHaveLength(1);
  const [tag] = await unackedTagsOf(admin, KEYS, [queue]);
  await admin.zadd(KEYS.unackedIndex, Date.now() / 1000 - 1000, tag as string);
  return broker;
}

describe("the poller's visibility timeout", () => {
  it('restores a message held longer than BROKER_VISIBILITY_TIMEOUT', async () => {
    // Prepare
    const held = await holdingForAWhile({
      BROKER_URL: redisUrl(12),
      BROKER_VISIBILITY_TIMEOUT: '960',
    });

    // Act
    await held.restoreStale?.();

    // Assess
    expect(await held.stats(queue)).toMatchObject({ ready: 1, unacked: 0 });
  });

  it('keeps holding it when BROKER_URL sets a longer visibility_timeout', async () => {
    // Prepare
    const held = await holdingForAWhile({
      BROKER_URL: `${redisUrl(12)}?visibility_timeout=3600`,
      BROKER_VISIBILITY_TIMEOUT: '960',
    });

    // Act
    await held.restoreStale?.();

    // Assess
    expect(await held.stats(queue)).toMatchObject({ ready: 0, unacked: 1 });
  });
});
