/**
 * The Redis broker on a `redis+cluster://` URL while nodes of a throw-away cluster of this file
 * are down: commands that fail fast with a clear error instead of hanging, the broker working on
 * while only masters it does not use are down, and the same broker working again once the nodes
 * are back. TLS and passwords are in redis-cluster-connection.test.ts.
 *
 * Nodes are stopped with SIGTERM and started again on their port from their `nodes-<port>.conf`
 * by the cluster helper (`stopNode`, `restartNode`, `restartNodes`), so they come back as the
 * same masters with the same slots.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { duplicateRedisClient, loadRedisClient } from '../../src/brokers/redis/redis-client.js';
import { BrokerError } from '../../src/core/errors.js';
import { taskMessage, uniqueQueue } from '../helpers/redis.js';
import {
  type ClusterNodeAddress,
  clusterView,
  type RedisCluster,
  restartNode,
  restartNodes,
  startRedisCluster,
  stopNode,
} from '../helpers/redis-cluster.js';
import {
  closeOpened,
  endpointOf,
  failureOf,
  keepClient,
  openBroker,
  openClient,
  roundTrip,
} from '../helpers/redis-cluster-broker.js';
import { keySlot, slotOwner } from '../helpers/redis-cluster-slots.js';

/**
 * How long a command on a stopped master's keys may take to fail: ioredis sends it to another
 * master after 100 ms, is sent back (MOVED), and so on until its redirections run out.
 */
const NODE_DOWN_FAILS_WITHIN_MS = 10_000;

/** Three plain masters whose nodes the tests stop and start again. */
let plain: RedisCluster;

/** The master owning the `{celery}` slot, where every key of a cluster broker lives, and another. */
async function celeryNodes(cluster: RedisCluster) {
  const owner = await slotOwner(cluster, await keySlot(cluster, '{celery}'));
  const other = cluster.nodes.find(({ port }) => port !== owner.port) as ClusterNodeAddress;
  return { owner, other };
}

/** Polls `witness` until it flags the master at `node` as failing (`fail`, past `fail?`). */
async function untilFlaggedFailing(
  cluster: RedisCluster,
  witness: ClusterNodeAddress,
  node: ClusterNodeAddress,
): Promise<void> {
  const flagsOf = async () => (await clusterView(cluster, witness))?.flags.get(node.port);
  await vi.waitFor(async () => expect(await flagsOf()).toBe('master,fail'), {
    timeout: 15_000,
    interval: 100,
  });
}

beforeAll(async () => {
  // Without replicas, Redis' default stops every slot once a master is seen failing; a test below
  // shows what the broker does when only masters it does not use are down.
  plain = await startRedisCluster({
    masters: 3,
    settings: { 'cluster-require-full-coverage': 'no' },
  });
  await loadRedisClient();
});

afterEach(closeOpened);

// The helper stops the nodes it restarted too, by their handles.
afterAll(() => plain?.stop());

describe('a redis+cluster:// broker while nodes are down', () => {
  beforeEach(() => restartNodes(plain));

  it('keeps working while a master that does not own {celery} is down', async () => {
    // Prepare
    const broker = openBroker({ url: plain.url });
    await roundTrip(broker);
    const { owner, other } = await celeryNodes(plain);

    // Act: just after the stop, and once the masters left have flagged the node as failing
    await stopNode(plain, other);
    const atOnce = await roundTrip(broker);
    await untilFlaggedFailing(plain, owner, other);
    const later = await roundTrip(broker);

    // Assess
    expect(atOnce).toEqual({ received: 2, left: { ready: 0, unacked: 0 } });
    expect(later).toEqual({ received: 2, left: { ready: 0, unacked: 0 } });
  });

  it('fails with a clear error, not a hang, while the owner of {celery} is down', async () => {
    // Prepare
    const broker = openBroker({ url: plain.url });
    await roundTrip(broker);
    const { owner } = await celeryNodes(plain);

    // Act
    await stopNode(plain, owner);
    const failures = await Promise.all([
      failureOf(() => broker.publish([taskMessage(uniqueQueue())])),
      failureOf(() => broker.receive(uniqueQueue(), { max: 1, waitMs: 0 })),
    ]);
    await restartNode(plain, owner);

    // Assess: both fail, and the same broker works once the node is back
    for (const { error, ms } of failures) {
      expect(error).toBeInstanceOf(BrokerError);
      expect(error.message).toContain(`Redis at ${endpointOf(plain)}: `);
      expect(error.message).toContain('the cluster did not serve these keys');
      expect(ms).toBeLessThan(NODE_DOWN_FAILS_WITHIN_MS);
    }
    expect(await roundTrip(broker)).toEqual({ received: 2, left: { ready: 0, unacked: 0 } });
  });

  it('rejects within a second while no node answers, then works once the nodes are back', async () => {
    // Prepare
    for (const node of plain.nodes) await stopNode(plain, node);
    const broker = openBroker({ url: plain.url });
    const client = openClient(plain.url);
    const copy = duplicateRedisClient(client);
    copy.on('error', () => {});
    keepClient(copy);

    // Act
    const first = await failureOf(() => broker.publish([taskMessage(uniqueQueue())]));
    const second = await failureOf(() => broker.publish([taskMessage(uniqueQueue())]));
    const copyDown = await failureOf(() => copy.get('{celery}:probe'));
    await restartNodes(plain);

    // Assess: each command tries anew, fails fast, and the same broker heals
    for (const { error, ms } of [first, second]) {
      expect(error).toBeInstanceOf(BrokerError);
      expect(error.message).toMatch(
        new RegExp(`^Redis at ${endpointOf(plain)}: publish to sc-test-[^ ]+ failed: `),
      );
      expect(error.message).toContain('no node of the cluster answered');
      expect(error.message).not.toContain('TLS');
      expect(ms).toBeLessThan(1000);
    }
    expect(copyDown.error.message).toMatch(/None of startup nodes is available/);
    expect(await roundTrip(broker)).toEqual({ received: 2, left: { ready: 0, unacked: 0 } });
    expect(await copy.set('{celery}:probe', 'back')).toBe('OK');
  });
});
