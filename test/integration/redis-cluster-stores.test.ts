/**
 * The stores beside the broker on a throw-away Redis Cluster of three masters, reached through
 * `redis+cluster://` URLs (ioredis `Cluster` clients): the once store and the cron tick locks,
 * whose keys spread over every master; the result backend under our worker, its results woken by
 * pub/sub through the cluster, a chain, and a chord whose counters share the `{celery}:` slot.
 * Events, the CLI and remote control: redis-cluster-events.test.ts, redis-cluster-cli.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker } from '../../src/brokers/create-broker.js';
import { redisOnceStore } from '../../src/brokers/redis/redis-once-store.js';
import { RedisResultBackend } from '../../src/brokers/redis/redis-result-backend.js';
import { chain, chord, routeFor } from '../../src/core/canvas.js';
import { createRegistry } from '../../src/core/registry.js';
import { taskMetaKey } from '../../src/core/result-backend.js';
import { signature } from '../../src/core/signature.js';
import { defineTask } from '../../src/core/task.js';
import { type CronResult, createCronHandler, tickLockAt } from '../../src/lambda/cron-handler.js';
import { createRuntime } from '../../src/lambda/runtime.js';
import { createPublisher } from '../../src/producer/publisher.js';
import { fakeContext } from '../helpers/lambda.js';
import {
  openClusterClient,
  openNodeClient,
  type RedisCluster,
  startRedisCluster,
} from '../helpers/redis-cluster.js';
import { keySlot, slotOwner } from '../helpers/redis-cluster-slots.js';
import { startLocalWorker } from '../helpers/worker.js';

/** The key prefix a cluster URL gets by default (broker and result backend). */
const PREFIX = '{celery}:';

let cluster: RedisCluster;
let admin: Cluster;
const closing: { close?(): Promise<unknown> }[] = [];
const nodeClients: Redis[] = [];

function track<T extends { close?(): Promise<unknown> }>(each: T): T {
  closing.push(each);
  return each;
}

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 });
  admin = openClusterClient(cluster);
});

afterAll(async () => {
  for (const each of closing.splice(0).reverse()) await each.close?.();
  for (const client of nodeClients) client.disconnect();
  admin?.disconnect();
  await cluster?.stop();
});

/** The ports of the masters serving `keys`. */
async function ownersOf(keys: readonly string[]): Promise<Set<number>> {
  const owners = await Promise.all(
    keys.map(async (key) => (await slotOwner(cluster, await keySlot(cluster, key))).port),
  );
  return new Set(owners);
}

describe('the once store and the cron locks on a cluster', () => {
  it('lets the first claim win and refuses the second, on keys spread over the masters', async () => {
    // Prepare: two stores, as two processes; keys without a hash tag spread over the masters
    // (48 random keys all missing one of three: a chance of 3 × (2/3)^48, about 10^-8).
    const first = track(redisOnceStore(cluster.url));
    const second = track(redisOnceStore(cluster.url));
    const keys = Array.from({ length: 48 }, (_, index) => `once-${index}-${randomUUID()}`);

    // Act
    const won = await Promise.all(keys.map((key) => first.claim(key, 60)));
    const lost = await Promise.all(keys.map((key) => second.claim(key, 60)));
    const seen = await Promise.all(keys.map((key) => second.exists(key)));
    await first.release?.(keys[0] as string);
    const again = await second.claim(keys[0] as string, 60);

    // Assess
    expect(await ownersOf(keys)).toEqual(new Set(cluster.ports));
    expect(won.every(Boolean)).toBe(true);
    expect(lost.some(Boolean)).toBe(false);
    expect(seen.every(Boolean)).toBe(true);
    expect(again).toBe(true);
    expect(await admin.ttl(keys[1] as string)).toBeGreaterThan(55);
  });

  it('lets a claim expire after its time to live', async () => {
    // Prepare
    const store = track(redisOnceStore(cluster.url));
    const key = `expiring-${randomUUID()}`;

    // Act
    const claimed = await store.claim(key, 1);
    const refused = await store.claim(key, 1);
    await sleep(1_100);
    const reclaimed = await store.claim(key, 1);

    // Assess
    expect([claimed, refused, reclaimed]).toEqual([true, false, true]);
  });

  it('publishes a cron tick once for overlapping triggers, locked on the cluster URL', async () => {
    // Prepare: three function instances, each with its lock as tickLockAt(CRON_LOCK_URL) makes it.
    const queue = `cron-${randomUUID()}`;
    const name = `cluster.cron_${randomUUID().replaceAll('-', '')}`;
    const task = defineTask({ name, queue, cron: '*/5 * * * *' }, () => null);
    const registry = createRegistry({ tasks: [task], queues: [{ name: queue }] });
    const runtime = createRuntime({ registry, broker: cluster.url });
    track(runtime.broker());
    const triggers = [0, 1, 2].map(() =>
      createCronHandler(runtime, name, { lock: track(tickLockAt(cluster.url)) }),
    );

    // Act
    const results: CronResult[] = await Promise.all(
      triggers.map((handler) => handler({ time: '2026-03-01T10:15:00Z' }, fakeContext())),
    );

    // Assess
    expect(results.filter((result) => result.published)).toHaveLength(1);
    expect(results.filter((result) => !result.published)).toHaveLength(2);
    expect(await runtime.broker().stats(queue)).toMatchObject({ ready: 1, deadLettered: 0 });
    const lockKey = `_sc.cron.${name}.2026-03-01T10:15:00.000Z`;
    expect(await admin.ttl(lockKey)).toBeGreaterThan(290);
  });
});

describe('the result backend on a cluster', () => {
  const queue = `results-${randomUUID()}`;
  let releaseGate: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    releaseGate = resolve;
  });
  const add = defineTask({ name: 'csx.add', queue }, (_kwargs, { args }) =>
    (args as number[]).reduce((sum, n) => sum + n, 0),
  );
  // Held until the test opens the gate, so a chord stays half counted meanwhile.
  const held = defineTask({ name: 'csx.held', queue, trackStarted: true }, async (_k, { args }) => {
    await gate;
    return args[0] as number;
  });
  const sum = defineTask({ name: 'csx.sum', queue }, (_kwargs, { args }) =>
    (args[0] as number[]).reduce((total, n) => total + n, 0),
  );
  const registry = createRegistry({ tasks: [add, held, sum], queues: [{ name: queue }] });
  let backend: RedisResultBackend;
  let publisher: ReturnType<typeof createPublisher>;
  let stop: () => Promise<void>;

  beforeAll(() => {
    const broker = track(createBroker(cluster.url, { queues: registry.queues }));
    backend = new RedisResultBackend(cluster.url, { route: routeFor(registry) });
    publisher = createPublisher(broker, { resultBackend: backend, registry });
    stop = startLocalWorker(broker, registry, { queues: [queue], resultBackend: backend });
  });

  afterAll(async () => {
    releaseGate();
    await stop?.();
    await backend?.close();
  });

  it('wakes a waiter by the PUBLISH that comes through the cluster, not by its read', async () => {
    // Prepare: a backend of its own for the wait, recording what its one read saw.
    const reads: string[] = [];
    const waiter = track(
      new (class extends RedisResultBackend {
        override async getMeta(id: string) {
          const meta = await super.getMeta(id);
          reads.push(meta.status);
          return meta;
        }
      })(cluster.url),
    );
    const id = randomUUID();
    const woken = waiter.waitFor(id, { timeoutMs: 10_000 });
    while (reads.length === 0) await sleep(10);

    // Act
    await publisher.sendTask('csx.add', { id, args: [20, 22] });
    const meta = await woken;

    // Assess: the read saw PENDING, so only the result's PUBLISH can have woken the wait.
    expect(reads).toEqual(['PENDING']);
    expect(meta).toMatchObject({ task_id: id, status: 'SUCCESS', result: 42 });
    expect(JSON.parse((await admin.get(taskMetaKey(id, PREFIX))) ?? '{}')).toMatchObject({
      status: 'SUCCESS',
    });
    expect(await admin.exists(taskMetaKey(id))).toBe(0);
  });

  it('runs a chain to its last result', async () => {
    // Act
    const last = await publisher.applyAsync(
      chain(signature('csx.add', { args: [1, 2] }), signature('csx.add', { args: [3] })),
    );

    // Assess
    expect(await backend.asyncResult(last).get({ timeout: 10 })).toBe(6);
  });

  it("completes a chord whose counters share the prefix's slot", async () => {
    // Prepare
    const heldId = `held-${randomUUID()}`;
    const header = [
      signature('csx.add', { args: [1, 1] }),
      signature('csx.add', { args: [2, 2] }),
      signature('csx.held', { args: [3], options: { id: heldId } }),
    ];

    // Act: the two quick parts are counted while the third is held.
    const bodyId = await publisher.applyAsync(chord(header, signature('csx.sum')));
    const counters = await untilCounted(2);
    const heldState = await backend.asyncResult(heldId).state();
    const slots = await Promise.all(counters.map((key) => keySlot(cluster, key)));
    releaseGate();
    const total = await backend.asyncResult(bodyId).get({ timeout: 10 });

    // Assess
    expect(heldState).toBe('STARTED');
    expect(counters.map((key) => key.slice(key.lastIndexOf('.')))).toEqual(['.j', '.s']);
    expect(new Set(slots)).toEqual(new Set([await keySlot(cluster, PREFIX)]));
    expect(total).toBe(9);
    expect(await admin.exists(...counters)).toBe(0);
  });

  /** The chord's `.j`/`.s` keys once `.j` counts `parts`, found on the prefix slot's master. */
  async function untilCounted(parts: number): Promise<string[]> {
    const owner = await slotOwner(cluster, await keySlot(cluster, PREFIX));
    const node = openNodeClient(cluster, owner);
    nodeClients.push(node);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const keys = (await node.keys(`${PREFIX}celery-taskset-meta-*`)).sort();
      const joined = keys.find((key) => key.endsWith('.j'));
      if (joined && (await node.zcard(joined)) === parts) return keys;
      if (Date.now() > deadline) throw new Error(`the chord never counted ${parts}: ${keys}`);
      await sleep(20);
    }
  }
});
