/**
 * The result backend's waits share one subscribed connection (result-subscriber.ts): many
 * concurrent `get()`s hold one connection, each channel is subscribed while someone waits on it,
 * a waiter that times out or aborts leaves the others waiting, and `close()` ends the connection.
 * A throw-away redis-server, so connection counts are the backend's alone.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RedisResultBackend } from '../../src/brokers/redis/redis-result-backend.js';
import type { GetOptions } from '../../src/core/async-result.js';
import { CeleryError } from '../../src/core/errors.js';
import { type ResultMeta, ResultTimeoutError, taskMetaKey } from '../../src/core/result-backend.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.js';

let server: ThrowawayRedis;
let admin: Redis;
let backend: RedisResultBackend;

/** Connections of the server besides `admin`: `[all, subscribed]` (`sub=` counts channels). */
async function connections(): Promise<[number, number]> {
  const lines = ((await admin.client('LIST')) as string).trim().split('\n');
  const others = lines.filter((line) => !/ name=sc-admin /.test(line));
  return [others.length, others.filter((line) => !/ sub=0 /.test(line)).length];
}

/** How many of the ids' channels have a subscriber on the server. */
async function subscribedChannels(ids: readonly string[]): Promise<number> {
  const replies = (await admin.pubsub('NUMSUB', ...ids.map((id) => taskMetaKey(id)))) as unknown[];
  return replies.filter((value, index) => index % 2 === 1 && Number(value) > 0).length;
}

function success(id: string, result: number): ResultMeta {
  return {
    status: 'SUCCESS',
    result,
    traceback: null,
    children: [],
    date_done: new Date().toISOString(),
    task_id: id,
  };
}

/** Resolves once `check` holds, polling the server. */
async function until(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

beforeAll(async () => {
  server = await startThrowawayRedis();
  admin = new Redis(server.url, { connectionName: 'sc-admin' });
});
afterAll(async () => {
  admin.disconnect();
  await server.stop();
});
beforeEach(() => {
  backend = new RedisResultBackend(server.url);
});
afterEach(async () => {
  await backend.close();
});

describe('waiting for results over one shared subscriber', () => {
  it('holds one subscribed connection for 50 concurrent gets, and wakes each with its own result', async () => {
    // Prepare
    const ids = Array.from({ length: 50 }, () => randomUUID());
    const gets = ids.map((id) => backend.asyncResult(id).get({ timeout: 10 }));
    await until(async () => (await subscribedChannels(ids)) === ids.length);

    // Act
    const [all, subscribed] = await connections();
    for (const [index, id] of ids.entries()) await backend.storeMeta(success(id, index));

    // Assess
    expect([all, subscribed]).toEqual([2, 1]);
    await expect(Promise.all(gets)).resolves.toEqual(ids.map((_, index) => index));
    await until(async () => (await subscribedChannels(ids)) === 0);
    expect(await connections()).toEqual([2, 0]);
  });

  it('misses no result stored while its channel is being subscribed', async () => {
    // Prepare
    const ids = Array.from({ length: 50 }, () => randomUUID());
    // The command connection is up, the subscriber not yet: stores outrun the SUBSCRIBEs.
    await backend.getMeta(randomUUID());

    // Act: every store races its get's SUBSCRIBE and read.
    const gets = ids.map((id) => backend.asyncResult(id).get({ timeout: 2 }));
    await Promise.all(ids.map((id, index) => backend.storeMeta(success(id, index))));

    // Assess
    await expect(Promise.all(gets)).resolves.toEqual(ids.map((_, index) => index));
  });

  it.each<[string, () => GetOptions, new (...args: never[]) => Error]>([
    ['times out', () => ({ timeout: 0.2 }), ResultTimeoutError],
    ['is aborted', () => ({ signal: AbortSignal.timeout(200) }), DOMException],
  ])('leaves the other waiters on the same id waiting when one %s', async (_, limits, error) => {
    // Prepare
    const id = randomUUID();
    const other = randomUUID();
    const patient = backend.asyncResult(id).get({ timeout: 10 });
    const elsewhere = backend.asyncResult(other).get({ timeout: 10 });
    await until(async () => (await subscribedChannels([id, other])) === 2);
    const hasty = backend.asyncResult(id).get(limits());

    // Act
    await expect(hasty).rejects.toBeInstanceOf(error);
    const stillSubscribed = await subscribedChannels([id, other]);
    await backend.storeMeta(success(id, 1));
    await backend.storeMeta(success(other, 2));

    // Assess
    expect(stillSubscribed).toBe(2);
    await expect(patient).resolves.toBe(1);
    await expect(elsewhere).resolves.toBe(2);
  });

  it('subscribes a channel again for a waiter that comes right after the last one left', async () => {
    // Prepare
    const id = randomUUID();
    await expect(backend.asyncResult(id).get({ timeout: 0.1 })).rejects.toThrow(ResultTimeoutError);

    // Act: its UNSUBSCRIBE is on its way as the next waiter subscribes.
    const again = backend.asyncResult(id).get({ timeout: 5 });
    await until(async () => (await subscribedChannels([id])) === 1);
    await backend.storeMeta(success(id, 7));

    // Assess
    await expect(again).resolves.toBe(7);
  });

  it('reads a result stored before the wait began without waiting', async () => {
    // Prepare
    const id = randomUUID();
    await backend.storeMeta(success(id, 3));

    // Act
    const value = await backend.asyncResult(id).get({ timeout: 1 });

    // Assess
    expect(value).toBe(3);
  });

  it('ends the subscriber connection on close, failing the waits still in progress', async () => {
    // Prepare
    const ids = [randomUUID(), randomUUID()];
    const gets = Promise.allSettled(ids.map((id) => backend.asyncResult(id).get()));
    await until(async () => (await subscribedChannels(ids)) === 2);

    // Act
    await backend.close();

    // Assess
    expect((await gets).map((settled) => settled.status)).toEqual(['rejected', 'rejected']);
    for (const settled of await gets) {
      expect((settled as PromiseRejectedResult).reason).toBeInstanceOf(CeleryError);
    }
    await until(async () => (await connections())[0] === 0);
    expect(await subscribedChannels(ids)).toBe(0);
  });
});
