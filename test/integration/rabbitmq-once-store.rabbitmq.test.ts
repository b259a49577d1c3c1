/**
 * The RabbitMQ once store (cron tick locks without Redis) on the real broker, in a throw-away
 * vhost: one claim wins among concurrent callers, release gives the key back, and the claim
 * queue carries its time to live (`x-expires`) and expires after it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rabbitMqOnceStore } from '../../src/brokers/rabbitmq/rabbitmq-once-store.js';
import { argumentsOf, createTestVhost, listQueues, type TestVhost } from '../helpers/rabbitmq.js';

let vhost: TestVhost;
beforeAll(async () => {
  vhost = await createTestVhost();
});
afterAll(() => vhost.remove());

const newKey = () =>
  `_sc.cron.it.task_${randomUUID().replaceAll('-', '')}.2026-03-01T10:15:00.000Z`;

describe('rabbitMqOnceStore', () => {
  it('grants a key to exactly one of many concurrent claims', async () => {
    const key = newKey();
    const stores = Array.from({ length: 5 }, () => rabbitMqOnceStore(vhost.url));

    const claims = await Promise.all(stores.map((store) => store.claim(key, 300)));

    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await rabbitMqOnceStore(vhost.url).exists(key)).toBe(true);
  });

  it('keeps the claim in a durable one-message queue that expires after the TTL', async () => {
    const key = newKey();
    const store = rabbitMqOnceStore(vhost.url);

    expect(await store.claim(key, 300)).toBe(true);

    const queue = (await listQueues(vhost.name)).find((listed) => listed.name === key);
    expect(queue).toMatchObject({ durable: true, auto_delete: false, messages_ready: 1 });
    expect(argumentsOf(queue)).toEqual({
      'x-expires': 300_000,
      'x-max-length': 1,
      'x-overflow': 'reject-publish',
    });
  });

  it('lets the key be claimed again once the TTL has passed unused', async () => {
    const key = newKey();
    const store = rabbitMqOnceStore(vhost.url);
    expect(await store.claim(key, 1)).toBe(true);
    expect(await store.claim(key, 1)).toBe(false);

    // Untouched meanwhile: any declaration (a claim, `exists`) counts as use and restarts the TTL.
    await new Promise((resolve) => setTimeout(resolve, 2500));

    expect((await listQueues(vhost.name)).some((listed) => listed.name === key)).toBe(false);
    expect(await store.claim(key, 1)).toBe(true);
    await store.release(key);
  });

  it('gives a released key to the next claim', async () => {
    const key = newKey();
    const store = rabbitMqOnceStore(vhost.url);
    expect(await store.claim(key, 300)).toBe(true);
    expect(await store.claim(key, 300)).toBe(false);

    await store.release(key);

    expect(await store.exists(key)).toBe(false);
    expect(await store.claim(key, 300)).toBe(true);
    await store.release(key);
    // Releasing what is gone already is not an error (a release after expiry).
    await expect(store.release(key)).resolves.toBeUndefined();
  });

  it('answers false for a key held with another TTL, and for a key never claimed', async () => {
    const key = newKey();
    const store = rabbitMqOnceStore(vhost.url);
    expect(await store.claim(key, 300)).toBe(true);

    expect(await store.claim(key, 60)).toBe(false);
    expect(await store.exists(newKey())).toBe(false);
    await store.release(key);
  });

  it('rejects a claim when the broker cannot be reached, instead of answering false', async () => {
    const store = rabbitMqOnceStore('amqp://guest:guest@127.0.0.1:1/', { connectTimeoutMs: 2000 });

    await expect(store.claim(newKey(), 300)).rejects.toThrow(/ECONNREFUSED/);
  });
});
