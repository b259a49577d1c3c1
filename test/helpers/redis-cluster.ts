/**
 * Throw-away Redis Clusters for tests: `redis-server` children in cluster mode on free ports, slots
 * assigned and nodes met by hand, torn down with their directory; single nodes stopped and
 * restarted by the handles this helper owns, to test clients through outages. The children
 * themselves are in redis-cluster-node.ts; slot tools (owners, resharding) in redis-cluster-slots.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, type ClusterOptions } from 'ioredis';
import { REDIS_HOST, type SelfSignedCertificate } from './redis.js';
import {
  clientOptions,
  clusterPorts,
  isRunning,
  type NodeChild,
  openNodeClient,
  spawnNode,
  stopChild,
  untilReady,
} from './redis-cluster-node.js';
import { formCluster, SETTLE_TIMEOUT_MS, untilSettled, withAdmins } from './redis-cluster-slots.js';

// Re-exported so that a test gets all its clients of a cluster from this module.
export { openNodeClient };

/** How long restarted nodes may take to be back, failure flags cleared (twice the node timeout). */
const RESTART_TIMEOUT_MS = 20_000;

/** Where a master listens. */
export interface ClusterNodeAddress {
  readonly host: string;
  readonly port: number;
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** How many masters share the 16384 slots (no replicas). */
  readonly masters: 1 | 3;
  /** Serve clients and the cluster bus over TLS only, with this certificate. */
  readonly tls?: SelfSignedCertificate;
  /** `requirepass` (and `masterauth`) of every node. */
  readonly password?: string;
  /** Server executable, e.g. `valkey-server`. @defaultValue `'redis-server'` */
  readonly server?: string;
  /**
   * More `redis-server` settings for every node, given at start and again on each restart
   * (unlike `CONFIG SET`, which a restarted node forgets), e.g.
   * `{ 'cluster-require-full-coverage': 'no' }`.
   */
  readonly settings?: Readonly<Record<string, string>>;
}

/** A running throw-away cluster. */
export interface RedisCluster {
  /** The masters; slots are split among them in this order. */
  readonly nodes: readonly ClusterNodeAddress[];
  readonly ports: readonly number[];
  /** `redis+cluster://[:<password>@]127.0.0.1:<p1>,…/0`, `rediss+cluster://` with TLS. */
  readonly url: string;
  readonly tls?: SelfSignedCertificate;
  readonly password?: string;
  /** The nodes' working directory (their `nodes-<port>.conf`); removed by `stop()`. */
  readonly dir: string;
  /** Stops the children this helper started or restarted (by handle) and removes their directory. */
  stop(): Promise<void>;
}

/** What each cluster was started with, and its current child per port (a restart replaces it). */
const running = new WeakMap<
  RedisCluster,
  { readonly options: RedisClusterOptions; readonly children: Map<number, NodeChild> }
>();

/**
 * Starts `options.masters` cluster-mode `redis-server`s that keep nothing on disk, gives each an
 * even share of the slots (as `redis-cli --cluster create` splits them) and makes them meet.
 * Resolves once every node reports `cluster_state:ok` and all answer the same `CLUSTER SLOTS`.
 *
 * @throws Error with each node's output when the cluster is not ready within 10 s.
 * @example
 * const cluster = await startRedisCluster({ masters: 3 });
 * const client = openClusterClient(cluster);
 */
export async function startRedisCluster(options: RedisClusterOptions): Promise<RedisCluster> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  const ports = await clusterPorts(options.masters);
  const dir = await mkdtemp(path.join(tmpdir(), 'sc-redis-cluster-'));
  const children = new Map(ports.map((port) => [port, spawnNode(port, dir, options)]));
  const nodes = ports.map((port) => ({ host: REDIS_HOST, port }));
  const scheme = options.tls ? 'rediss+cluster' : 'redis+cluster';
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  const cluster: RedisCluster = {
    nodes,
    ports,
    url: `${scheme}://${auth}${nodes.map(({ host, port }) => `${host}:${port}`).join(',')}/0`,
    dir,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.password === undefined ? {} : { password: options.password }),
    async stop() {
      await Promise.all([...children.values()].map(stopChild));
      await rm(dir, { recursive: true, force: true });
    },
  };
  running.set(cluster, { options, children });
  try {
    await Promise.all([...children.values()].map((child) => untilReady(child, deadline)));
    await withAdmins(cluster, async (admins) => {
      await formCluster(admins);
      await untilSettled(admins, deadline);
    });
    return cluster;
  } catch (error) {
    await cluster.stop();
    const logs = [...children.values()]
      .map(({ port, output }) => `--- node ${port}:\n${output.text}`)
      .join('\n');
    throw new Error(`Redis Cluster on ${ports.join(',')} did not start: ${error}\n${logs}`, {
      cause: error,
    });
  }
}

/**
 * Stops `node` of `cluster` with SIGTERM, by the handle of the child this helper started or
 * restarted, and resolves once it has exited; a node already stopped is left as it is.
 *
 * @throws Error if `node` is not one of the cluster's.
 */
export async function stopNode(cluster: RedisCluster, node: ClusterNodeAddress): Promise<void> {
  await stopChild(childOf(cluster, node.port));
}

/**
 * Starts `node` of `cluster` again if it is stopped: same port, same `nodes-<port>.conf` (so it
 * is the same master with the same slots), same flags and settings as at start. Resolves once
 * it is back in the cluster: every running node says `cluster_state:ok` and flags no running node
 * as failing. A minority of the masters can not be ok: restart those together with
 * {@link restartNodes}.
 *
 * @throws Error with the node's output if it does not start, or the cluster is not whole in 20 s.
 */
export async function restartNode(cluster: RedisCluster, node: ClusterNodeAddress): Promise<void> {
  await restartNodes(cluster, [node]);
}

/**
 * {@link restartNode} for every stopped one of `nodes` (by default all of the cluster's) at once,
 * e.g. after all of them were stopped; resolves once the cluster is whole again.
 */
export async function restartNodes(
  cluster: RedisCluster,
  nodes: readonly ClusterNodeAddress[] = cluster.nodes,
): Promise<void> {
  const deadline = Date.now() + RESTART_TIMEOUT_MS;
  const { options, children } = stateOf(cluster);
  const stopped = nodes.filter(({ port }) => !isRunning(childOf(cluster, port)));
  const restarted = stopped.map(({ port }) => spawnNode(port, cluster.dir, options));
  for (const child of restarted) children.set(child.port, child);
  for (const child of restarted) {
    await untilReady(child, deadline).catch((error: unknown) => {
      throw new Error(`node ${child.port} did not restart: ${error}\n${child.output.text}`);
    });
  }
  await untilWhole(cluster, deadline);
}

/** What one node says of the cluster, as {@link clusterView} reads it. */
export interface ClusterView {
  /** Whether it says `cluster_state:ok`. */
  readonly ok: boolean;
  /** The flags it gives each node, by port: `myself,master`, `master,fail?`, `master,fail`… */
  readonly flags: ReadonlyMap<number, string>;
}

/**
 * What `node` says of the cluster (`CLUSTER INFO`, `CLUSTER NODES`), asked over a connection that
 * does not retry; `undefined` while the node does not answer, for callers that poll.
 */
export async function clusterView(
  cluster: RedisCluster,
  node: ClusterNodeAddress,
): Promise<ClusterView | undefined> {
  const admin = openNodeClient(cluster, node, { retryStrategy: () => null });
  // The failure also rejects the command below, which answers `undefined`.
  admin.on('error', () => {});
  try {
    const info = String(await admin.call('CLUSTER', ['INFO']));
    const lines = String(await admin.call('CLUSTER', ['NODES']))
      .trim()
      .split('\n');
    // `<id> <host>:<port>@<bus port> <flags> …`
    const flags = lines.map((line) => [
      Number(/:(\d+)@/.exec(line)?.[1]),
      line.split(' ')[2] ?? '',
    ]);
    return { ok: info.includes('cluster_state:ok'), flags: new Map(flags as [number, string][]) };
  } catch {
    // Not up (yet): the caller polls again.
    return undefined;
  } finally {
    admin.disconnect();
  }
}

/**
 * An ioredis `Cluster` client of `cluster`, with its password and TLS trust set. `dnsLookup`
 * hands addresses back unresolved, as ioredis advises for TLS, so certificates are checked
 * against the address given. `options` are spread over these defaults.
 */
export function openClusterClient(cluster: RedisCluster, options: ClusterOptions = {}): Cluster {
  return new Cluster(
    cluster.nodes.map(({ host, port }) => ({ host, port })),
    {
      dnsLookup: (address, callback) => callback(null, address),
      ...options,
      redisOptions: { ...clientOptions(cluster), ...options.redisOptions },
    },
  );
}

function stateOf(cluster: RedisCluster) {
  const state = running.get(cluster);
  if (!state) throw new Error(`the cluster on ${cluster.ports.join(',')} was not started here`);
  return state;
}

function childOf(cluster: RedisCluster, port: number): NodeChild {
  const child = stateOf(cluster).children.get(port);
  if (!child) throw new Error(`${port} is not a node of the cluster on ${cluster.ports.join(',')}`);
  return child;
}

/** Polls until every running node is ok and flags no running node as failing (`fail?`, `fail`). */
async function untilWhole(cluster: RedisCluster, deadline: number): Promise<void> {
  for (;;) {
    const up = cluster.nodes.filter(({ port }) => isRunning(childOf(cluster, port)));
    const views = await Promise.all(up.map((node) => clusterView(cluster, node)));
    const failing = (view: ClusterView) =>
      up.some(({ port }) => view.flags.get(port)?.includes('fail'));
    if (views.every((view) => view?.ok && !failing(view))) return;
    if (Date.now() > deadline) {
      const seen = views.map(
        (view, i) => `${up[i]?.port}: ${view ? JSON.stringify([...view.flags]) : 'no answer'}`,
      );
      throw new Error(`cluster not whole again; last seen:\n${seen.join('\n')}`);
    }
    await sleep(100);
  }
}
