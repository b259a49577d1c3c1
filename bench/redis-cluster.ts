/**
 * The benchmarks' Redis Cluster: three masters of its own, started by a measurement script that
 * has a `redis-cluster` case to run and stopped when the script ends, and cleanup of the keys the
 * benchmarks leave in it. Its URL reaches the peers' processes through
 * {@link CLUSTER_URL_ENV}, since its ports are only known once it runs.
 *
 * Every key of ours is under the `{celery}:` prefix, so one master (the owner of that slot) holds
 * them all: the figures measure what the cluster client and protocol cost, not sharding.
 */
import { Cluster, type Redis } from 'ioredis';
import { CLUSTER_KEY_PREFIX } from '../src/config/redis-transport-options.js';
import { splitClusterUrl } from '../src/config/redis-url.js';
import type { RedisCluster } from '../test/helpers/redis-cluster.js';

/**
 * The variable holding the cluster's URL: set by {@link withBenchCluster} for the children it
 * starts, or set beforehand to measure on a cluster of one's own (which is then left running).
 */
export const CLUSTER_URL_ENV = 'BENCH_REDIS_CLUSTER_URL';

/** The cluster's URL, once {@link withBenchCluster} started it (or it was given). */
export function clusterUrl(): string {
  const url = process.env[CLUSTER_URL_ENV];
  if (!url) throw new Error(`no Redis Cluster: ${CLUSTER_URL_ENV} is not set`);
  return url;
}

/**
 * Runs `body` with a three-master cluster whose URL is in {@link CLUSTER_URL_ENV}, when `needed`
 * and no URL was given; stops it afterwards, whether `body` resolved or threw. A cluster that
 * does not start is reported on stderr and `body` runs without one: its cluster cases then fail
 * one by one ({@link clusterUrl} throws) and the script's other cases still run.
 */
export async function withBenchCluster<T>(needed: boolean, body: () => Promise<T>): Promise<T> {
  if (!needed || process.env[CLUSTER_URL_ENV]) return body();
  let cluster: RedisCluster;
  try {
    // Imported here: every peer process loads harness.ts, and only this one starts a cluster.
    const { startRedisCluster } = await import('../test/helpers/redis-cluster.js');
    cluster = await startRedisCluster({ masters: 3 });
  } catch (error) {
    process.stderr.write(`  no Redis Cluster for the cluster cases: ${error}\n`);
    return body();
  }
  process.env[CLUSTER_URL_ENV] = cluster.url;
  try {
    return await body();
  } finally {
    delete process.env[CLUSTER_URL_ENV];
    await cluster.stop();
  }
}

/**
 * Deletes the keys matching `patterns` under the cluster's key prefix `{celery}:` (and without it,
 * should anything have bypassed the prefix) on every master: SCAN sees one node's keys only.
 */
export async function deleteClusterKeys(patterns: readonly string[]): Promise<number> {
  const nodes = splitClusterUrl(clusterUrl())?.nodes ?? [];
  const client = new Cluster(
    nodes.map(({ host, port }) => ({ host, port })),
    // Fail, rather than wait for ever (ioredis' default) when no node answers.
    { redisOptions: { maxRetriesPerRequest: 1 }, clusterRetryStrategy: () => null },
  );
  // Safe to ignore: the same failure rejects the command below, which reports it.
  client.on('error', () => undefined);
  try {
    // The masters are known once the slot map has been read.
    await client.ping();
    const masters = client.nodes('master');
    const counts = await Promise.all(
      masters.map((node) =>
        deleteNodeKeys(node, [...patterns.map((p) => `${CLUSTER_KEY_PREFIX}${p}`), ...patterns]),
      ),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  } finally {
    client.disconnect();
  }
}

/** One node's matching keys, deleted one by one: a multi-key UNLINK must stay in one slot. */
async function deleteNodeKeys(node: Redis, patterns: readonly string[]): Promise<number> {
  let deleted = 0;
  for (const pattern of patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      const pipeline = node.pipeline();
      for (const key of keys) pipeline.unlink(key);
      const replies = (await pipeline.exec()) ?? [];
      deleted += replies.filter(([error, count]) => !error && count === 1).length;
    } while (cursor !== '0');
  }
  return deleted;
}
