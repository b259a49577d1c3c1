/**
 * The slot map of a throw-away Redis Cluster (test/helpers/redis-cluster.ts): splitting the slots
 * among the masters at start and waiting until they agree, which master serves a slot, the slot
 * of a key, and one-slot resharding the way `redis-cli --cluster reshard` does it, to test
 * clients while a slot moves under them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { REDIS_HOST } from './redis.js';
import type { ClusterNodeAddress, RedisCluster } from './redis-cluster.js';
import { openNodeClient } from './redis-cluster-node.js';

/** Hash slots of every Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;
/** How long a start, or the agreement after a slot move, may take. */
export const SETTLE_TIMEOUT_MS = 10_000;
const MIGRATE_BATCH = 100;
const MIGRATE_TIMEOUT_MS = 5_000;

/** A master's admin connection, as {@link withAdmins} hands it out. */
export interface Admin {
  readonly port: number;
  readonly id: string;
  readonly client: Redis;
}

interface SlotRange extends ClusterNodeAddress {
  readonly start: number;
  readonly end: number;
}

/**
 * Moves hash slot `slot`, keys and all, from its owner to master `to`, as `redis-cli --cluster
 * reshard` does: IMPORTING on the target, MIGRATING on the source, `MIGRATE` in batches of 100,
 * then `SETSLOT NODE` on target, source and the other masters. Clients keep working meanwhile
 * (ASK while it moves, MOVED after); resolves once every node agrees on the new owner.
 *
 * @param options.afterBatch - awaited after each `MIGRATE`, while the slot is half moved: a test
 * can pause there so its client meets keys on both sides (ASK), or look at the nodes
 * @returns the number of keys handed to `MIGRATE` (a key a client deletes meanwhile still counts)
 * @throws Error if `to` is not a master of the cluster or already owns the slot, or if a node
 * refuses a step (e.g. `BUSYKEY`: the target already holds one of the keys).
 */
export async function moveSlot(
  cluster: RedisCluster,
  slot: number,
  to: ClusterNodeAddress,
  options: { afterBatch?: (moved: number) => Promise<void> | void } = {},
): Promise<number> {
  assertSlot(slot);
  return withAdmins(cluster, async (admins) => {
    const owner = ownerOf(await slotRanges(admins[0]?.client), slot);
    const source = admins.find((admin) => admin.port === owner.port);
    const target = admins.find((admin) => admin.port === to.port);
    if (!source || !target) throw new Error(`${to.host}:${to.port} is not a master of the cluster`);
    if (source === target) throw new Error(`slot ${slot} already belongs to ${to.port}`);
    // Importing first: once the source says MIGRATING it sends ASK, and the target must accept it.
    await target.client.call('CLUSTER', ['SETSLOT', slot, 'IMPORTING', source.id]);
    await source.client.call('CLUSTER', ['SETSLOT', slot, 'MIGRATING', target.id]);
    const auth = cluster.password === undefined ? [] : ['AUTH', cluster.password];
    const getKeys = ['GETKEYSINSLOT', slot, MIGRATE_BATCH];
    let moved = 0;
    for (;;) {
      // Buffers, so binary key names survive the round trip.
      const keys = (await source.client.callBuffer('CLUSTER', getKeys)) as Buffer[];
      if (keys.length === 0) break;
      const args = [to.host, to.port, '', 0, MIGRATE_TIMEOUT_MS, ...auth, 'KEYS', ...keys];
      await source.client.call('MIGRATE', args);
      moved += keys.length;
      await options.afterBatch?.(moved);
    }
    // Target first: a source that let go first would send clients MOVED to a target that still
    // only imports the slot, and the target would send them back (a loop until it learns).
    const others = admins.filter((admin) => admin !== source && admin !== target);
    for (const admin of [target, source, ...others]) {
      await admin.client.call('CLUSTER', ['SETSLOT', slot, 'NODE', target.id]);
    }
    await untilSettled(admins, Date.now() + SETTLE_TIMEOUT_MS);
    return moved;
  });
}

/** The master that serves `slot`, as the cluster's first node sees it. */
export async function slotOwner(cluster: RedisCluster, slot: number): Promise<ClusterNodeAddress> {
  assertSlot(slot);
  return ownerOf(await withAdmins(cluster, ([first]) => slotRanges(first?.client)), slot);
}

/** The hash slot of `key`, asked of the server (`CLUSTER KEYSLOT`), hash tags included. */
export async function keySlot(cluster: RedisCluster, key: string): Promise<number> {
  return withAdmins(cluster, async ([first]) =>
    Number(await first?.client.call('CLUSTER', ['KEYSLOT', key])),
  );
}

/** Runs `act` with an admin client per master and its node id; all closed when `act` settles. */
export async function withAdmins<T>(
  cluster: RedisCluster,
  act: (admins: Admin[]) => Promise<T>,
): Promise<T> {
  const clients = cluster.nodes.map((node) => openNodeClient(cluster, node));
  try {
    const ids = await Promise.all(clients.map((client) => client.call('CLUSTER', ['MYID'])));
    const port = (index: number) => cluster.ports[index] as number;
    return await act(clients.map((client, i) => ({ port: port(i), id: String(ids[i]), client })));
  } finally {
    for (const client of clients) client.disconnect();
  }
}

/**
 * Splits the slots as `redis-cli --cluster create` does (0-5460, 5461-10922, 10923-16383) and
 * lets the first node meet the others. Distinct config epochs up front, as redis-cli sets them,
 * spare the nodes the epoch-collision round before they agree.
 */
export async function formCluster(admins: readonly Admin[]): Promise<void> {
  const count = admins.length;
  await Promise.all(
    admins.map(async ({ client }, index) => {
      await client.call('CLUSTER', ['SET-CONFIG-EPOCH', index + 1]);
      const start = Math.round((index * CLUSTER_SLOTS) / count);
      const end = Math.round(((index + 1) * CLUSTER_SLOTS) / count) - 1;
      await client.call('CLUSTER', ['ADDSLOTSRANGE', start, end]);
    }),
  );
  const [first, ...others] = admins;
  for (const { port } of others) await first?.client.call('CLUSTER', ['MEET', REDIS_HOST, port]);
}

/**
 * Polls until every node is `cluster_state:ok`, knows them all and answers one slot map.
 *
 * @throws Error with what each node last said once `deadline` (epoch ms) passes.
 */
export async function untilSettled(admins: readonly Admin[], deadline: number): Promise<void> {
  for (;;) {
    const views = await Promise.all(
      admins.map(async ({ port, client }) => {
        const info = String(await client.call('CLUSTER', ['INFO']));
        const slots = JSON.stringify(await slotRanges(client));
        return { port, info, slots };
      }),
    );
    const settled = views.every(
      ({ info, slots }) =>
        info.includes('cluster_state:ok') &&
        info.includes(`cluster_known_nodes:${admins.length}\r`) &&
        slots === views[0]?.slots,
    );
    if (settled) return;
    if (Date.now() > deadline) {
      const seen = views.map(
        ({ port, info, slots }) => `${port}: ${info.split('\r\n', 6)} ${slots}`,
      );
      throw new Error(`cluster not settled; last seen:\n${seen.join('\n')}`);
    }
    await sleep(50);
  }
}

/** `CLUSTER SLOTS` as sorted `{ start, end, host, port }` of the masters (no replicas, no ids). */
async function slotRanges(client: Redis | undefined): Promise<SlotRange[]> {
  const reply = (await client?.call('CLUSTER', ['SLOTS'])) as [number, number, [string, number]][];
  return reply
    .map(([start, end, [host, port]]) => ({ start, end, host, port }))
    .sort((a, b) => a.start - b.start);
}

function ownerOf(ranges: readonly SlotRange[], slot: number): ClusterNodeAddress {
  const range = ranges.find(({ start, end }) => start <= slot && slot <= end);
  if (!range) throw new Error(`slot ${slot} is not assigned`);
  return { host: range.host, port: range.port };
}

function assertSlot(slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= CLUSTER_SLOTS) {
    throw new RangeError(`not a hash slot: ${slot}`);
  }
}
