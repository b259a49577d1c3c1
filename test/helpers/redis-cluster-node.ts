/**
 * One node of a throw-away cluster (test/helpers/redis-cluster.ts): a free client and bus port for
 * it, its `redis-server` child (the same command line on a restart, so it comes back as it was),
 * its output kept for error messages, stopping it by the handle that started it, and a plain
 * client of it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { REDIS_HOST } from './redis.js';
import type { ClusterNodeAddress, RedisCluster, RedisClusterOptions } from './redis-cluster.js';

/** Redis' default: the cluster bus listens on the client port + 10000. */
const BUS_PORT_OFFSET = 10_000;
/** Client ports come from here, so ports and bus ports stay below Linux' ephemeral range (32768+):
 * an outgoing connection cannot grab one between our probe and redis-server's bind. */
const PORT_RANGE = { from: 12_000, to: 22_000 } as const;

/** One node's `redis-server` child, as {@link spawnNode} started it. */
export interface NodeChild {
  readonly port: number;
  readonly server: ChildProcess;
  /** The last 8000 characters it printed, and whether it said it accepts connections. */
  readonly output: { text: string; ready: boolean };
}

/** `count` random client ports P whose bus port P + 10000 is free too. */
export async function clusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tries = 0; ports.length < count; tries++) {
    if (tries > 200) throw new Error('no free pair of client and bus ports');
    const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from));
    if (ports.some((taken) => Math.abs(taken - port) % BUS_PORT_OFFSET === 0)) continue;
    if ((await canListen(port)) && (await canListen(port + BUS_PORT_OFFSET))) ports.push(port);
  }
  return ports;
}

/** Whether a server can listen on `port` of 127.0.0.1 right now (it is closed again at once). */
export function canListen(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, REDIS_HOST, () => server.close(() => resolve(true)));
  });
}

/**
 * Starts a cluster-mode node on `port` that keeps nothing on disk but its `nodes-<port>.conf` in
 * `dir`, with `options`' TLS, password and settings. Called again with the same arguments on a
 * stopped node, it brings that node back from its config file: same id, slots and epoch.
 */
export function spawnNode(port: number, dir: string, options: RedisClusterOptions): NodeChild {
  const { tls, password } = options;
  const config = {
    port: tls ? '0' : String(port),
    bind: REDIS_HOST,
    dir,
    save: '',
    appendonly: 'no',
    'cluster-enabled': 'yes',
    'cluster-node-timeout': '2000',
    'cluster-config-file': path.join(dir, `nodes-${port}.conf`),
    // A node learns its own address only from a peer, so a lone master would answer CLUSTER SLOTS
    // with an empty host, which ioredis' Cluster skips: it then finds no node and never connects.
    'cluster-announce-ip': REDIS_HOST,
    // With TLS only the TLS port listens; tls-cluster moves the bus to TLS and makes the nodes
    // announce the TLS port, so clients are redirected to a port that speaks TLS.
    ...(tls && { 'tls-port': String(port), 'tls-cluster': 'yes', 'tls-replication': 'yes' }),
    ...(tls && { 'tls-cert-file': tls.certFile, 'tls-key-file': tls.keyFile }),
    ...(tls && { 'tls-ca-cert-file': tls.certFile, 'tls-auth-clients': 'no' }),
    ...(password !== undefined && { requirepass: password, masterauth: password }),
    ...options.settings,
  };
  const args = Object.entries(config).flatMap(([name, value]) => [`--${name}`, value]);
  const child = spawn(options.server ?? 'redis-server', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { text: '', ready: false };
  const keep = (chunk: Buffer | string) => {
    output.text = (output.text + chunk.toString()).slice(-8_000);
    output.ready ||= output.text.includes('Ready to accept connections');
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // Kept for the error message; without a listener a spawn failure (ENOENT) would crash the run.
  child.on('error', (error) => keep(`${error}\n`));
  // A test process that exits without its afterAll (a crash, a hook timeout) takes its nodes along.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  return { port, server: child, output };
}

/** Whether `child` was started and has not exited. */
export function isRunning({ server: child }: NodeChild): boolean {
  return child.exitCode === null && child.signalCode === null && child.pid !== undefined;
}

/**
 * Waits for "Ready to accept connections".
 *
 * @throws Error if the child exits first or `deadline` (epoch ms) passes.
 */
export async function untilReady(child: NodeChild, deadline: number): Promise<void> {
  while (!child.output.ready) {
    if (!isRunning(child)) {
      const { exitCode, signalCode } = child.server;
      throw new Error(`node exited (${exitCode ?? signalCode ?? 'not started'})`);
    }
    if (Date.now() > deadline) throw new Error('node not ready in time');
    await sleep(20);
  }
}

/** Stops `child` with SIGTERM and resolves once it has exited; one not running is left alone. */
export async function stopChild(child: NodeChild): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise((resolve) => child.server.once('exit', resolve));
  child.server.kill('SIGTERM');
  await exited;
}

/**
 * A plain ioredis client of one node (not cluster-aware: it gets MOVED and ASK as errors), with the
 * cluster's password and TLS trust; for `CLUSTER` commands and looking at one node's keys.
 * `options` are spread over these defaults.
 */
export function openNodeClient(
  cluster: RedisCluster,
  node: ClusterNodeAddress,
  options: RedisOptions = {},
): Redis {
  return new Redis({ ...node, maxRetriesPerRequest: 1, ...clientOptions(cluster), ...options });
}

/** The ioredis options a client of `cluster` needs: its password and TLS trust, if any. */
export function clientOptions(cluster: Pick<RedisCluster, 'password' | 'tls'>) {
  return {
    ...(cluster.password === undefined ? {} : { password: cluster.password }),
    ...(cluster.tls ? { tls: { ca: cluster.tls.pem, rejectUnauthorized: true } } : {}),
  };
}
