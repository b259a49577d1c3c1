/**
 * A slot migration under a draining worker, on a three-master Redis Cluster of this file's own:
 * every key of the broker is `{celery}:`-prefixed, so all of them are in the slot of `{celery}`.
 * While the local worker drains a queue, that slot moves to another master and back, each time
 * held half-moved for a second (keys on the target, the slot still MIGRATING on the source and
 * IMPORTING on the target), as a resharding of a large slot would hold it; in the first, a
 * fresh producer publishes more.
 *
 * What it takes: in that state Redis 7 answers TRYAGAIN to every script that names a key the
 * node does not hold (the receive and promote scripts name lists that are mostly empty), on the
 * source before the keys move and on the target after; MULTIs meet ASK (EXECABORT) on the
 * source. ioredis retries those by itself, within `maxRedirections` (redis-client.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/brokers/redis/redis-broker.js';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { runLocalWorker } from '../../src/worker/local-worker.js';
import { recordingLogger, uniqueQueue } from '../helpers/redis.js';
import {
  type ClusterNodeAddress,
  openNodeClient,
  type RedisCluster,
  startRedisCluster,
} from '../helpers/redis-cluster.js';
import { keySlot, moveSlot, slotOwner } from '../helpers/redis-cluster-slots.js';

const MESSAGES = 2000;
/** Published by a fresh producer while the slot is half moved. */
const LATE_MESSAGES = 200;
/** Each run's length: with 10 at once, the drain takes about 2 s plus the two moves. */
const RUN_MS = 5;
/** How long each move stays half done: twice what ioredis' default 16 redirections ride out. */
const HALF_MOVED_MS = 1_000;
/** Short, so that a message held by a failed settle would come back within the test. */
const VISIBILITY_TIMEOUT_S = 5;
const DRAIN_TIMEOUT_MS = 30_000;

let cluster: RedisCluster;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 });
});

afterAll(async () => {
  await cluster?.stop();
});

/** What one move saw while the slot was half moved. */
interface HalfMoved {
  /** Keys of the slot on the source and on the target (`CLUSTER COUNTKEYSINSLOT`). */
  readonly sourceKeys: number;
  readonly targetKeys: number;
  /** Messages run while the slot stayed half moved. */
  readonly ranMeanwhile: number;
  /** How long `meanwhile` took, ms. */
  readonly meanwhileMs: number;
}

/**
 * Moves `slot` to `to`, held half moved for {@link HALF_MOVED_MS} (while `meanwhile` runs, if
 * given); resolves once all nodes agree.
 */
async function moveHalting(
  slot: number,
  to: ClusterNodeAddress,
  ranSoFar: () => number,
  meanwhile: () => Promise<void> = async () => {},
): Promise<HalfMoved> {
  const from = await slotOwner(cluster, slot);
  const count = async (node: ClusterNodeAddress) => {
    const client = openNodeClient(cluster, node);
    try {
      return Number(await client.call('CLUSTER', ['COUNTKEYSINSLOT', slot]));
    } finally {
      client.disconnect();
    }
  };
  let seen: HalfMoved | undefined;
  await moveSlot(cluster, slot, to, {
    async afterBatch() {
      const [before, startedAt] = [ranSoFar(), Date.now()];
      const [meanwhileMs] = await Promise.all([
        meanwhile().then(() => Date.now() - startedAt),
        sleep(HALF_MOVED_MS),
      ]);
      const [sourceKeys, targetKeys] = [await count(from), await count(to)];
      seen = { sourceKeys, targetKeys, ranMeanwhile: ranSoFar() - before, meanwhileMs };
    },
  });
  if (!seen) throw new Error(`slot ${slot} held no key to move`);
  return seen;
}

describe('a drain while the slot of {celery} moves to another master and back', () => {
  it('runs every message exactly once, leaves nothing held, and the worker never fails', async ({
    annotate,
  }) => {
    // Prepare
    const queue = uniqueQueue();
    const input = { url: cluster.url, visibilityTimeout: VISIBILITY_TIMEOUT_S };
    const config = parseBrokerConfig({ kind: 'redis', ...input });
    if (config.kind !== 'redis') throw new Error(`not a Redis config: ${config.kind}`);
    const brokerLogger = recordingLogger();
    const broker = new RedisBroker({ config, logger: brokerLogger });
    const slot = await keySlot(cluster, config.keyPrefix);
    const home = await slotOwner(cluster, slot);
    const away = cluster.nodes.find((node) => node.port !== home.port) as ClusterNodeAddress;
    const runs: string[] = [];
    const work = defineTask({ name: 'it.migrate', queue }, async (_kwargs, ctx) => {
      runs.push(ctx.id);
      await sleep(RUN_MS);
    });
    const registry = createRegistry({ tasks: [work], queues: [{ name: queue }] });
    const messages = Array.from({ length: MESSAGES }, (_, n) => work.createMessage({ args: [n] }));
    const late = Array.from({ length: LATE_MESSAGES }, (_, n) => work.createMessage({ args: [n] }));
    const all = [...messages, ...late];
    await broker.publish(messages);
    // A producer of its own, so that its first publish also connects and binds mid-move.
    const producer = new RedisBroker({ config, logger: brokerLogger });
    const settled = new Set<string>();
    const workerLogger = recordingLogger();
    const stop = new AbortController();
    let workerError: unknown = null;
    const worker = runLocalWorker(broker, registry, {
      queues: [queue],
      concurrency: 10,
      waitMs: 250,
      restoreEveryMs: 500,
      signal: stop.signal,
      logger: workerLogger,
      onOutcome: ({ delivery }) => {
        if (delivery.result.ok) settled.add(delivery.result.message.id);
      },
    }).catch((error: unknown) => {
      workerError = error;
    });
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    const untilRun = async (count: number) => {
      while (new Set(runs).size < count && Date.now() < deadline) await sleep(10);
    };

    // Act: move the slot away at 20 % of the drain, and home again at 60 %.
    await untilRun(MESSAGES * 0.2);
    const out = await moveHalting(
      slot,
      away,
      () => runs.length,
      () => producer.publish(late),
    );
    const ownerAway = await slotOwner(cluster, slot);
    await untilRun(MESSAGES * 0.6);
    const back = await moveHalting(slot, home, () => runs.length);
    const ownerBack = await slotOwner(cluster, slot);
    let stats = await broker.stats(queue);
    while (
      (settled.size < all.length || stats.ready + stats.unacked > 0) &&
      Date.now() < deadline
    ) {
      await sleep(100);
      stats = await broker.stats(queue);
    }
    // A little longer, so a message run twice would show up before the worker stops.
    await sleep(500);
    stop.abort();
    await worker;
    stats = await broker.stats(queue);
    await Promise.all([broker.close(), producer.close()]);

    // Assess: the slot went away and came back, its keys on the target while half moved.
    expect(ownerAway).toEqual(away);
    expect(ownerBack).toEqual(home);
    for (const move of [out, back]) {
      expect(move.sourceKeys).toBe(0);
      expect(move.targetKeys).toBeGreaterThan(0);
    }
    // The late publish went through while the slot was half moved.
    expect(out.meanwhileMs).toBeLessThan(HALF_MOVED_MS);
    // Every message ran once and was settled; nothing is left ready, held, delayed or dead.
    const counts = new Map<string, number>();
    for (const id of runs) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(all.map((message) => message.id).sort());
    expect([...counts.values()].filter((count) => count > 1)).toEqual([]);
    expect(settled.size).toBe(all.length);
    expect(stats).toMatchObject({ ready: 0, unacked: 0, delayed: 0, deadLettered: 0 });
    // No command gave up during the moves: the client rode them out.
    expect(workerError).toBeNull();
    expect(workerLogger.warnings).toEqual([]);
    expect(brokerLogger.warnings).toEqual([]);
    await annotate(
      `slot ${slot} ${home.port} → ${away.port} → ${home.port}; run while half moved: ` +
        `${out.ranMeanwhile} and ${back.ranMeanwhile} of ${all.length} ` +
        `(keys on the target: ${out.targetKeys}, ${back.targetKeys}); ` +
        `${LATE_MESSAGES} published meanwhile in ${out.meanwhileMs} ms`,
    );
  });
});
