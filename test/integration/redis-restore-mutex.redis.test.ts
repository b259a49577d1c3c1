/**
 * A restore pass cut short before it could release kombu's `unacked_mutex` (seen in the
 * reliability suite: redis-server SIGKILLed with persistence on, mid-pass) must not stop the
 * same worker's later passes until the mutex lapses (30 s): the worker releases its own mutex
 * first, never another's. A throw-away `redis-server` whose ACL user is denied the commands of
 * the pass (the index read, the release script) plays the lost connection, deterministically.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/brokers/redis/redis-broker.js';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import {
  manualClock,
  recordingLogger,
  startThrowawayRedis,
  type ThrowawayRedis,
  taskMessage,
} from '../helpers/redis.js';

const MUTEX = 'unacked_mutex';
const USER = 'worker';
const PASSWORD = 'worker-password';

let server: ThrowawayRedis;
let admin: Redis;

beforeAll(async () => {
  server = await startThrowawayRedis();
  admin = new Redis(server.url);
  await admin.acl('SETUSER', USER, 'on', `>${PASSWORD}`, '~*', '&*', '+@all');
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

/** A broker of the ACL user, on its own clock. */
function openBroker(now: () => number): RedisBroker {
  const url = server.url.replace('redis://', `redis://${USER}:${PASSWORD}@`);
  const config = parseBrokerConfig({ kind: 'redis', url, visibilityTimeout: 1 });
  if (config.kind !== 'redis') throw new Error(`not a Redis config: ${config.kind}`);
  return new RedisBroker({ config, logger: recordingLogger(), now });
}

describe('restore mutex after a pass that could not release it', () => {
  it('is released by the same worker’s next pass, which then restores', async () => {
    // Prepare: a message held by a consumer that died, stale for the survivor.
    const clock = manualClock();
    const queue = `sc-test-mutex-${crypto.randomUUID()}`;
    const crashed = openBroker(clock.now);
    const survivor = openBroker(clock.now);
    await crashed.publish([taskMessage(queue)]);
    await crashed.receive(queue, { max: 1, waitMs: 0 });
    await crashed.close();
    clock.advance(1500);
    // The pass takes the mutex, then every later command of it fails: as a connection lost mid-pass.
    await admin.acl('SETUSER', USER, '-zrevrangebyscore', '-evalsha', '-eval');

    // Act
    const cut = await survivor.restoreStale().then(
      () => undefined,
      (error: unknown) => error,
    );
    const heldAfterCut = await admin.pttl(MUTEX);
    await admin.acl('SETUSER', USER, '+@all');
    const restored = await survivor.restoreStale();

    // Assess
    expect(String(cut)).toMatch(/NOPERM/);
    expect(heldAfterCut).toBeGreaterThan(20_000);
    expect(restored).toBe(1);
    expect(await admin.exists(MUTEX)).toBe(0);
    await survivor.close();
  });

  it('leaves a mutex another worker holds alone', async () => {
    // Prepare: our pass was cut as above, then our mutex lapsed and another worker took it.
    const clock = manualClock();
    const queue = `sc-test-mutex-${crypto.randomUUID()}`;
    const broker = openBroker(clock.now);
    await broker.publish([taskMessage(queue)]);
    await admin.acl('SETUSER', USER, '-zrevrangebyscore', '-evalsha', '-eval');
    await broker.restoreStale().catch(() => undefined);
    await admin.acl('SETUSER', USER, '+@all');
    await admin.set(MUTEX, 'another-worker', 'PX', 30_000);

    // Act
    const restored = await broker.restoreStale();

    // Assess
    expect(restored).toBe(0);
    expect(await admin.get(MUTEX)).toBe('another-worker');
    await admin.del(MUTEX);
    await broker.close();
  });
});
