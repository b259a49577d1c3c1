/**
 * Real Python Celery on a Redis Cluster whose one master holds all 16384 slots (ElastiCache
 * Serverless' shape), set up as Celery users set it up: kombu's plain Redis transport on
 * `redis://<node>/0` with `broker_transport_options={'global_keyprefix': '{celery}:'}`, which
 * works because every key shares the hash tag's slot and that slot's node answers everything.
 * Our side uses `redis+cluster://<node>/0`, whose default key prefix is that same `{celery}:`.
 *
 * Shared by redis-cluster-interop.test.ts (sends both ways) and redis-cluster-restore.test.ts
 * (stale holds restored both ways): the throw-away cluster and a look at its node's keys, the
 * Python producer (`test/python/keyprefix_send.py`) and Celery worker (`keyprefix_app.py`) with
 * the prefix, and our fixture app run by our local worker until a condition holds.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { decodeUnackedEntry } from '../../src/core/redis-codec.js';
import type { WorkerEvent } from '../../src/worker/local-worker.js';
import { createFixtureApp, type FixtureApp, type RunRecord } from '../fixtures-app/registry.js';
import {
  CELERY_INTEROP_DIR,
  type CeleryRunRecord,
  type CeleryWorker,
  PYTHON,
  startCeleryWorker,
  TEST_PYTHON_DIR,
} from './celery.js';
import { openNodeClient, type RedisCluster, startRedisCluster } from './redis-cluster.js';
import { runWorkerUntil } from './worker.js';

/** kombu's `global_keyprefix` on the Python side, our cluster default on ours. */
export const PREFIX = '{celery}:';
/** Seconds, on both sides: short, so that holds go stale within a test. */
export const VISIBILITY_TIMEOUT = 2;

/** Debian's Celery always; 5.6.3 when `CELERY56_PY` names its interpreter (else `missing` says why). */
export const CELERY_VERSIONS = [
  { version: '5.2.6', kombu: '5.2.4', python: PYTHON, missing: '' },
  {
    version: '5.6.3',
    kombu: '5.6.2',
    python: process.env.CELERY56_PY ?? '',
    missing: 'CELERY56_PY is not set (make a venv with shared/celery-interop/celery56-venv.sh)',
  },
] as const;

/** Our fixture app on a queue of its own, and the runs it records. */
export interface Fixture {
  readonly queue: string;
  readonly app: FixtureApp;
  readonly runs: RunRecord[];
}

/** A {@link Fixture} on a new queue named after `label`. */
export function fixture(label: string): Fixture {
  const queue = `sc-cluster-${label}-${randomUUID().slice(0, 8)}`;
  const runs: RunRecord[] = [];
  return { queue, app: createFixtureApp({ queue, record: (run) => void runs.push(run) }), runs };
}

/** One task for `keyprefix_send.py`. */
export interface PythonTask {
  readonly args: readonly unknown[];
  readonly kwargs?: Record<string, unknown>;
  readonly countdown?: number;
  /** ISO 8601 with an offset. */
  readonly eta?: string;
}

/** What `keyprefix_send.py` prints. */
export interface PythonSent {
  readonly celery: string;
  readonly kombu: string;
  readonly transport_options: Record<string, unknown>;
  readonly sent: readonly { readonly id: string }[];
}

/** A one-master throw-away cluster, a plain client of its node, and our brokers on it. */
export class InteropCluster {
  readonly cluster: RedisCluster;
  /** A plain client of the node, to look at keys as they are stored. */
  readonly node: Redis;
  /** What Python connects to: the node as a plain Redis, as on ElastiCache Serverless. */
  readonly pythonUrl: string;
  readonly #brokers: Broker[] = [];

  private constructor(cluster: RedisCluster) {
    const [first] = cluster.nodes;
    if (!first) throw new Error('the cluster has no node');
    this.cluster = cluster;
    this.node = openNodeClient(cluster, first);
    this.pythonUrl = `redis://${first.host}:${first.port}/0`;
  }

  /** Starts the cluster (one master) and connects to its node. */
  static async start(): Promise<InteropCluster> {
    return new InteropCluster(await startRedisCluster({ masters: 1 }));
  }

  /** A broker on the cluster URL (default prefix), closed by {@link InteropCluster.stop}. */
  broker(app: FixtureApp, visibilityTimeout?: number): Broker {
    const config = {
      kind: 'redis' as const,
      url: this.cluster.url,
      ...(visibilityTimeout && { visibilityTimeout }),
    };
    const broker = createBroker(config, {
      queues: app.registry.queues,
      logger: { warn: () => {} },
    });
    this.#brokers.push(broker);
    return broker;
  }

  /** Sends `tasks` to `queue` from real Python Celery with the prefix, in one process. */
  async sendFromPython(python: string, queue: string, tasks: PythonTask[]): Promise<PythonSent> {
    const script = path.join(TEST_PYTHON_DIR, 'keyprefix_send.py');
    const args = ['--broker', this.pythonUrl, '--queue', queue, '--global-keyprefix', PREFIX];
    const { stdout } = await promisify(execFile)(
      python,
      [script, ...args, '--tasks', JSON.stringify(tasks)],
      {
        timeout: 30_000,
        env: { ...process.env, PYTHONPATH: `${TEST_PYTHON_DIR}:${CELERY_INTEROP_DIR}` },
      },
    );
    return JSON.parse(stdout) as PythonSent;
  }

  /**
   * A real Celery worker of `python` on `queue` with the prefix and a {@link VISIBILITY_TIMEOUT}
   * visibility timeout; stopped by `stopCeleryWorkers()`.
   */
  startCelery(python: string, queue: string): Promise<CeleryWorker> {
    return startCeleryWorker({
      broker: this.pythonUrl,
      queue,
      python,
      visibilityTimeout: VISIBILITY_TIMEOUT,
      include: ['keyprefix_app'],
      env: { INTEROP_GLOBAL_KEYPREFIX: PREFIX },
    });
  }

  /** Task ids held in `{celery}:unacked` for `queue`, read off the node. */
  async heldIds(queue: string): Promise<string[]> {
    const entries = Object.values(await this.node.hgetall(`${PREFIX}unacked`));
    return entries
      .map((raw) => decodeUnackedEntry(raw))
      .filter((entry) => entry?.routingKey === queue)
      .map(
        (entry) => (JSON.parse(entry?.envelope ?? '{}') as { headers: { id: string } }).headers.id,
      );
  }

  /**
   * Which of `keys`, as named without the prefix, exist on the node: one EXISTS each, since keys
   * outside the hash tag are in other slots and a multi-key command across slots is refused.
   */
  async unprefixed(...keys: string[]): Promise<string[]> {
    const found = await Promise.all(keys.map((key) => this.node.exists(key)));
    return keys.filter((_, index) => found[index] === 1);
  }

  /** Asserts that every key on the node is under the prefix, in the hash tag's slot. */
  async expectEveryKeyPrefixed(): Promise<void> {
    const keys = await this.node.keys('*');
    const slots = await Promise.all(keys.map((key) => this.node.call('CLUSTER', ['KEYSLOT', key])));
    expect(keys.filter((key) => !key.startsWith(PREFIX))).toEqual([]);
    expect(keys).toContain(`${PREFIX}_kombu.binding.celery.pidbox`);
    const tagSlot = await this.node.call('CLUSTER', ['KEYSLOT', PREFIX]);
    expect(new Set(slots)).toEqual(new Set([tagSlot]));
  }

  /** Closes the brokers opened here and the node client, then stops the cluster. */
  async stop(): Promise<void> {
    await Promise.all(this.#brokers.map((broker) => broker.close()));
    this.node.disconnect();
    await this.cluster.stop();
  }
}

/**
 * Runs our local worker on `broker`, calls `meanwhile` once it runs, and stops it once `done()`
 * holds (20 s at most).
 *
 * @returns every settled message, in settling order
 * @throws what the worker failed with, or an Error naming the runs so far on timeout
 */
export function runOurWorker(
  broker: Broker,
  { queue, app, runs }: Fixture,
  done: () => boolean,
  meanwhile?: () => Promise<unknown>,
): Promise<WorkerEvent[]> {
  return runWorkerUntil(broker, app.registry, {
    queue,
    done,
    describe: () => `runs ${JSON.stringify(runs)}`,
    ...(meanwhile ? { meanwhile } : {}),
  });
}

/** The run record `worker` wrote for task `id`; fails the test if there is none. */
export function celeryRunOf(worker: CeleryWorker, id: string): CeleryRunRecord {
  const run = worker.runs().find((candidate) => candidate.id === id);
  if (!run) expect.fail(`Celery did not run ${id}; records: ${JSON.stringify(worker.records())}`);
  return run;
}

/** The ids of `list`, sorted. */
export function ids(list: readonly { readonly id: string }[]): string[] {
  return list.map(({ id }) => id).sort();
}
