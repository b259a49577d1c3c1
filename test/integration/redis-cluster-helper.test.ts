/**
 * The throw-away Redis Cluster helper (`test/helpers/redis-cluster.ts`, its slot tools in
 * `redis-cluster-slots.ts`) against real `redis-server`s in cluster mode: one master, three
 * masters, TLS and a password, ioredis `Cluster` clients across slots, and a slot moved under a
 * client that keeps draining it. Every cluster is its own children on free ports; the shared
 * Redis on 6379 is not touched.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSelfSignedCertificate, type SelfSignedCertificate } from '../helpers/redis.js';
import {
  type ClusterNodeAddress,
  openClusterClient,
  openNodeClient,
  type RedisCluster,
  type RedisClusterOptions,
  restartNode,
  startRedisCluster,
  stopNode,
} from '../helpers/redis-cluster.js';
import { canListen } from '../helpers/redis-cluster-node.js';
import { CLUSTER_SLOTS, keySlot, moveSlot, slotOwner } from '../helpers/redis-cluster-slots.js';

const PASSWORD = 'cluster:secret@1';

const clusters: RedisCluster[] = [];
const clients: (Redis | Cluster)[] = [];
let certificate: SelfSignedCertificate;
let single: RedisCluster;
let triple: RedisCluster;
let secured: RedisCluster;
let guarded: RedisCluster;

/** Starts every cluster, and keeps each that started for afterAll even if another fails. */
async function startAll<const T extends readonly RedisClusterOptions[]>(
  all: T,
): Promise<{ [K in keyof T]: RedisCluster }> {
  const settled = await Promise.allSettled(all.map((options) => startRedisCluster(options)));
  for (const result of settled) if (result.status === 'fulfilled') clusters.push(result.value);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  const started = settled.map((result) => (result as PromiseFulfilledResult<RedisCluster>).value);
  return started as { [K in keyof T]: RedisCluster };
}

function track<T extends Redis | Cluster>(client: T): T {
  clients.push(client);
  return client;
}

/** `CLUSTER INFO` and the masters' slot ranges as one node sees them. */
async function nodeView(cluster: RedisCluster, index: number) {
  const node = track(openNodeClient(cluster, cluster.nodes[index] as ClusterNodeAddress));
  const info = String(await node.call('CLUSTER', ['INFO']));
  const slots = (await node.call('CLUSTER', ['SLOTS'])) as [number, number, [string, number]][];
  const ranges = slots.map(([start, end, [host, port]]) => ({ start, end, host, port }));
  return { info, ranges, node };
}

function askingCalls(commandstats: string): number {
  return Number(/cmdstat_asking:calls=(\d+)/.exec(commandstats)?.[1] ?? 0);
}

beforeAll(async () => {
  certificate = await makeSelfSignedCertificate();
  // Side by side: each start mostly waits out Redis' 2 s delay before a master reports ok.
  [single, triple, secured, guarded] = await startAll([
    { masters: 1 },
    { masters: 3 },
    { masters: 3, tls: certificate },
    { masters: 1, password: PASSWORD },
  ]);
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await Promise.all(clusters.map((cluster) => cluster.stop()));
  await certificate?.remove();
});

describe('startRedisCluster', () => {
  it('serves all 16384 slots from the one node of a one-master cluster', async () => {
    const { info, ranges } = await nodeView(single, 0);

    expect(info).toContain('cluster_state:ok');
    expect(info).toContain(`cluster_slots_assigned:${CLUSTER_SLOTS}`);
    // The host matters: ioredis' Cluster skips a node whose CLUSTER SLOTS host is empty.
    expect(ranges).toEqual([
      { start: 0, end: CLUSTER_SLOTS - 1, host: '127.0.0.1', port: single.ports[0] },
    ]);
    expect(single.url).toBe(`redis+cluster://127.0.0.1:${single.ports[0]}/0`);
  });

  it('lets an ioredis Cluster client use a one-master cluster', async () => {
    const client = track(openClusterClient(single));

    await client.set('single', 'one node');

    expect(await client.get('single')).toBe('one node');
  });

  it('splits the slots among three masters that all report ok and agree', async () => {
    const views = await Promise.all(triple.nodes.map((_, index) => nodeView(triple, index)));

    for (const { info, ranges } of views) {
      expect(info).toContain('cluster_state:ok');
      expect(info).toContain('cluster_known_nodes:3');
      expect(ranges).toEqual(views[0]?.ranges);
    }
    expect(new Set(views[0]?.ranges.map(({ port }) => port))).toEqual(new Set(triple.ports));
    const covered = views[0]?.ranges.reduce((sum, { start, end }) => sum + end - start + 1, 0);
    expect(covered).toBe(CLUSTER_SLOTS);
    expect(triple.url).toBe(
      `redis+cluster://${triple.ports.map((port) => `127.0.0.1:${port}`).join(',')}/0`,
    );
  });

  it('lets an ioredis Cluster client set and get keys in slots of different masters', async () => {
    const client = track(openClusterClient(triple));
    const keys = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];

    for (const key of keys) await client.set(key, `value of ${key}`);

    const owners = await Promise.all(
      keys.map(async (key) => (await slotOwner(triple, await keySlot(triple, key))).port),
    );
    expect(new Set(owners).size).toBeGreaterThan(1);
    for (const key of keys) expect(await client.get(key)).toBe(`value of ${key}`);
  });

  it('serves TLS only, and a Cluster client trusting the certificate gets answers', async () => {
    const client = track(openClusterClient(secured));
    const { node } = await nodeView(secured, 1);

    await client.set('{tls}:key', 'over tls');

    expect(secured.url).toMatch(/^rediss\+cluster:\/\/127\.0\.0\.1:\d+,/);
    expect(await node.call('CONFIG', ['GET', 'port'])).toEqual(['port', '0']);
    expect(await node.call('CONFIG', ['GET', 'tls-cluster'])).toEqual(['tls-cluster', 'yes']);
    expect(await client.get('{tls}:key')).toBe('over tls');
  });

  it('requires its password and answers a client that gives it', async () => {
    const node = guarded.nodes[0] as ClusterNodeAddress;
    // No reconnects: each would log the refusal again.
    const noRetry = { retryStrategy: () => null };
    const anonymous = track(openNodeClient({ ...guarded, password: undefined }, node, noRetry));
    const refusals: Error[] = [];
    anonymous.on('error', (error: Error) => refusals.push(error));
    const client = track(openClusterClient(guarded));

    await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    await client.set('guarded', 'yes');

    expect(guarded.url).toBe(
      `redis+cluster://:cluster%3Asecret%401@127.0.0.1:${guarded.ports[0]}/0`,
    );
    expect(await client.get('guarded')).toBe('yes');
    expect(refusals.map(({ message }) => message)).toEqual([expect.stringMatching(/NOAUTH/)]);
  });

  it('fails with the output of its nodes when a server cannot start', async () => {
    const start = startRedisCluster({ masters: 1, server: 'sc-no-such-redis-server' });

    await expect(start).rejects.toThrow(/did not start[\s\S]*--- node \d+:\n.*ENOENT/);
  });

  it('stops its nodes and removes their directory', async () => {
    const [cluster] = await startAll([{ masters: 1 }]);

    await cluster.stop();

    expect(existsSync(cluster.dir)).toBe(false);
    for (const port of cluster.ports) {
      expect(await canListen(port)).toBe(true);
      expect(await canListen(port + 10_000)).toBe(true);
    }
  });
});

describe('stopNode and restartNode', () => {
  it('bring a node back on its port as the same master, with the settings it started with', async () => {
    const settings = { 'cluster-require-full-coverage': 'no' };
    const [cluster] = await startAll([{ masters: 1, settings }]);
    const node = cluster.nodes[0] as ClusterNodeAddress;
    const before = await nodeView(cluster, 0);
    const id = await before.node.call('CLUSTER', ['MYID']);
    // Closed before its node stops, or ioredis would log each reconnect attempt.
    before.node.disconnect();

    await stopNode(cluster, node);
    const freed = await canListen(node.port);
    await restartNode(cluster, node);

    const after = await nodeView(cluster, 0);
    expect(freed).toBe(true);
    expect(await after.node.call('CLUSTER', ['MYID'])).toBe(id);
    expect(after.info).toContain('cluster_state:ok');
    expect(after.ranges).toEqual(before.ranges);
    expect(await after.node.config('GET', 'cluster-require-full-coverage')).toEqual([
      'cluster-require-full-coverage',
      'no',
    ]);
    after.node.disconnect();
    await cluster.stop();
    expect(await canListen(node.port)).toBe(true);
  });
});

describe('moveSlot', () => {
  it('moves the slot of {celery} with its keys, and a Cluster client still reads them', async () => {
    const client = track(openClusterClient(triple));
    const slot = await keySlot(triple, '{celery}');
    const keys = Array.from({ length: 250 }, (_, index) => `{celery}:x:${index}`);
    for (const key of keys) await client.set(key, key.toUpperCase());
    const from = await slotOwner(triple, slot);
    const to = triple.nodes.find(({ port }) => port !== from.port);
    if (!to) throw new Error('no other master');

    const moved = await moveSlot(triple, slot, to);

    expect(moved).toBe(keys.length);
    expect(await slotOwner(triple, slot)).toEqual(to);
    const source = track(openNodeClient(triple, from));
    expect(await source.call('CLUSTER', ['COUNTKEYSINSLOT', slot])).toBe(0);
    for (const key of keys) expect(await client.get(key)).toBe(key.toUpperCase());
  });

  it('lets a client drain a queue of the slot while the slot moves', async () => {
    const client = track(openClusterClient(triple));
    const slot = await keySlot(triple, '{drain}');
    // A queue of ids and a key per task body: thousands of keys, so MIGRATE runs in many batches
    // while the drain pops ids and takes bodies, some still on the source, some already moved.
    const ids = Array.from({ length: 5_000 }, (_, index) => String(index));
    // Redis 7.0 hands out a slot's keys newest first: bodies written last id first, then the
    // queue, move in the order the drain reaches them, so it soon meets moved keys (ASK).
    const bodies = [...ids].reverse().map((id) => [`{drain}:task:${id}`, `body ${id}`]);
    await client.mset(Object.fromEntries(bodies));
    await client.rpush('{drain}:queue', ...ids);
    const from = await slotOwner(triple, slot);
    const to = triple.nodes.find(({ port }) => port !== from.port) as ClusterNodeAddress;
    const target = track(openNodeClient(triple, to));
    const askingBefore = askingCalls(String(await target.info('commandstats')));

    const taken: (string | null)[] = [];
    const drain = (async () => {
      for (let id = await client.lpop('{drain}:queue'); id !== null; ) {
        taken.push(await client.getdel(`{drain}:task:${id}`));
        id = await client.lpop('{drain}:queue');
      }
    })();
    // Short pauses between batches let the drain run while the keys are split between nodes.
    const moved = await moveSlot(triple, slot, to, { afterBatch: () => sleep(5) });
    const drainedDuringMove = taken.length;
    await drain;

    // The drain was under way before the move ended and went on after it.
    expect(drainedDuringMove).toBeGreaterThan(0);
    expect(drainedDuringMove).toBeLessThan(ids.length);
    // ASKING on the target: the client was sent there for keys that had already moved.
    expect(askingCalls(String(await target.info('commandstats')))).toBeGreaterThan(askingBefore);
    expect(moved).toBeGreaterThan(0);
    expect(taken).toEqual(ids.map((id) => `body ${id}`));
    expect(await target.call('CLUSTER', ['COUNTKEYSINSLOT', slot])).toBe(0);
    expect(await slotOwner(triple, slot)).toEqual(to);
  });

  it('refuses to move a slot to the master that already owns it', async () => {
    const slot = await keySlot(triple, '{celery}');
    const owner = await slotOwner(triple, slot);

    await expect(moveSlot(triple, slot, owner)).rejects.toThrow(/already belongs/);
    await expect(moveSlot(triple, CLUSTER_SLOTS, owner)).rejects.toThrow(RangeError);
  });
});
