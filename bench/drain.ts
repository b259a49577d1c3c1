/**
 * Drain rate: N no-op tasks already queued, one worker process runs and settles them all. The
 * rate is (N − 1) / (end of the last task − start of the first), taken inside the worker, so
 * start-up is left out for everyone. "Settled" is what each peer does: ours and BullMQ record
 * the outcome in the broker after the task ran; Celery acks before running (its default,
 * `acks_late=False`); celery-node acks on receipt (AMQP) or keeps no record at all (Redis).
 *
 * Queues are filled by our batch publisher (Celery protocol v2, which every Celery-speaking peer
 * reads) or by BullMQ's addBulk. Slow peers get a smaller N (the figure says which).
 *
 * Our default worker on one Redis node takes turns, run by run, with the same worker sending
 * Celery events and with it on the benchmarks' Redis Cluster (redis-cluster.ts): those figures
 * are goals as ratios to it, and a ratio of runs made minutes apart would measure the host.
 */

import { alternationGroups, measureAlternating } from './alternating.js';
import {
  BROKERS,
  type BrokerName,
  cleanQueue,
  createVhost,
  type Figure,
  listenToEvents,
  PYTHON,
  runChild,
  runScript,
  type System,
  scaled,
  startChild,
  tsxCommand,
} from './harness.js';
import { withBenchCluster } from './redis-cluster.js';

interface DrainCase {
  readonly id: string;
  readonly system: System;
  readonly broker: BrokerName;
  readonly label: string;
  readonly settings: Figure['settings'];
  readonly n: number;
  /** The worker command for a queue and a count (the queue holds count messages). */
  readonly worker: (queue: string, count: number) => [string, string[]];
  readonly note?: string;
  /** The worker sends Celery events, and a receiver in this process listens. */
  readonly listen?: boolean;
  /**
   * The case this one is compared with (the same worker without events, or on one Redis node):
   * their runs alternate, so that load on the machine hits both alike.
   */
  readonly alternatesWith?: string;
}

function celery(broker: BrokerName, pool: 'solo' | 'prefork', prefetch = 0) {
  return (queue: string, count: number): [string, string[]] => [
    PYTHON,
    [
      'peers/celery_bench.py',
      'worker',
      '--broker',
      BROKERS[broker],
      '--queue',
      queue,
      '--n',
      String(count),
      '--pool',
      pool,
      '--concurrency',
      pool === 'solo' ? '1' : '2',
      ...(prefetch ? ['--prefetch', String(prefetch)] : []),
    ],
  ];
}

const ours =
  (broker: BrokerName, concurrency: number, events = false) =>
  (queue: string, count: number) =>
    tsxCommand('peers/ours.ts', [
      'worker',
      broker,
      queue,
      String(count),
      String(concurrency),
      ...(events ? ['events'] : []),
    ]);
const celeryNode = (broker: BrokerName, mode: string) => (queue: string, count: number) =>
  tsxCommand('peers/celery-node.ts', ['worker', broker, queue, String(count), mode]);
const bullmq = (concurrency: number) => (queue: string, count: number) =>
  tsxCommand('peers/bullmq.ts', ['worker', queue, String(count), String(concurrency)]);

/** Celery's prefetch multiplier that keeps its solo pool on RabbitMQ from stalling. */
const CELERY_AMQP_SOLO_PREFETCH = 64;

const DRAIN_CASES: readonly DrainCase[] = [
  {
    id: 'drain.redis.ours',
    system: 'ours',
    broker: 'redis',
    label: 'ours, concurrency 10',
    settings: 'default',
    n: scaled(20_000),
    worker: ours('redis', 10),
  },
  // Right after the same worker without events, so the pair is measured under the same load.
  {
    id: 'drain.redis.ours-events',
    system: 'ours',
    broker: 'redis',
    label: 'ours, concurrency 10, Celery events on',
    settings: 'default',
    n: scaled(20_000),
    worker: ours('redis', 10, true),
    note: 'task-received/started/succeeded per task, one receiver listening',
    listen: true,
    alternatesWith: 'drain.redis.ours',
  },
  // Every key in the slot of {celery}, so one master serves the queue: this is the cost of the
  // cluster client and protocol. Run by run with the single node, as the events pair.
  {
    id: 'drain.redis-cluster.ours',
    system: 'ours',
    broker: 'redis-cluster',
    label: 'ours, concurrency 10, Redis Cluster (3 masters)',
    settings: 'default',
    n: scaled(20_000),
    worker: ours('redis-cluster', 10),
    note: 'own three-master cluster, key prefix {celery}:',
    alternatesWith: 'drain.redis.ours',
  },
  {
    id: 'drain.redis.ours-c50',
    system: 'ours',
    broker: 'redis',
    label: 'ours, concurrency 50',
    settings: 'best',
    n: scaled(20_000),
    worker: ours('redis', 50),
  },
  {
    id: 'drain.redis.celery-solo',
    system: 'celery',
    broker: 'redis',
    label: 'Celery --pool=solo',
    settings: 'default',
    n: scaled(5_000),
    worker: celery('redis', 'solo'),
  },
  {
    id: 'drain.redis.celery-prefork',
    system: 'celery',
    broker: 'redis',
    label: 'Celery prefork -c 2',
    settings: 'default',
    n: scaled(5_000),
    worker: celery('redis', 'prefork'),
  },
  {
    id: 'drain.redis.celery-node',
    system: 'celery-node',
    broker: 'redis',
    label: 'celery-node',
    settings: 'only',
    n: scaled(20_000),
    worker: celeryNode('redis', 'default'),
    note: 'BRPOP: no unacked record, acks nothing',
  },
  {
    id: 'drain.redis.bullmq-c1',
    system: 'bullmq',
    broker: 'redis',
    label: 'BullMQ concurrency 1',
    settings: 'default',
    n: scaled(10_000),
    worker: bullmq(1),
  },
  {
    id: 'drain.redis.bullmq-c50',
    system: 'bullmq',
    broker: 'redis',
    label: 'BullMQ concurrency 50',
    settings: 'best',
    n: scaled(20_000),
    worker: bullmq(50),
  },
  {
    id: 'drain.amqp.ours',
    system: 'ours',
    broker: 'amqp',
    label: 'ours, concurrency 10',
    settings: 'default',
    n: scaled(20_000),
    worker: ours('amqp', 10),
  },
  {
    id: 'drain.amqp.ours-events',
    system: 'ours',
    broker: 'amqp',
    label: 'ours, concurrency 10, Celery events on',
    settings: 'default',
    n: scaled(20_000),
    worker: ours('amqp', 10, true),
    note: 'task-received/started/succeeded per task, one receiver listening',
    listen: true,
    alternatesWith: 'drain.amqp.ours',
  },
  {
    id: 'drain.amqp.ours-c50',
    system: 'ours',
    broker: 'amqp',
    label: 'ours, concurrency 50',
    settings: 'best',
    n: scaled(20_000),
    worker: ours('amqp', 50),
  },
  {
    id: 'drain.amqp.celery-solo',
    system: 'celery',
    broker: 'amqp',
    label: 'Celery --pool=solo',
    settings: 'default',
    n: scaled(200),
    worker: celery('amqp', 'solo'),
    note: 'stalls when its prefetch window (4) runs dry',
  },
  {
    id: 'drain.amqp.celery-solo-prefetch',
    system: 'celery',
    broker: 'amqp',
    label: `Celery --pool=solo, prefetch ×${CELERY_AMQP_SOLO_PREFETCH}`,
    settings: 'best',
    n: scaled(5_000),
    worker: celery('amqp', 'solo', CELERY_AMQP_SOLO_PREFETCH),
  },
  {
    id: 'drain.amqp.celery-prefork',
    system: 'celery',
    broker: 'amqp',
    label: 'Celery prefork -c 2',
    settings: 'default',
    n: scaled(5_000),
    worker: celery('amqp', 'prefork'),
  },
  {
    id: 'drain.amqp.celery-node',
    system: 'celery-node',
    broker: 'amqp',
    label: 'celery-node',
    settings: 'default',
    n: scaled(20_000),
    worker: celeryNode('amqp', 'default'),
    note: "acks on receipt; Nagle's algorithm on",
  },
  {
    id: 'drain.amqp.celery-node-nodelay',
    system: 'celery-node',
    broker: 'amqp',
    label: 'celery-node, socket noDelay',
    settings: 'best',
    n: scaled(20_000),
    worker: celeryNode('amqp', 'nodelay'),
    note: 'acks on receipt, no prefetch limit',
  },
];

/** One drain: fill the queue, run the worker until it reports the last task, clean up. */
async function drainOnce(item: DrainCase, run: number): Promise<number> {
  const queue = `bench.drain.${item.id.split('.').pop()}.${run}`;
  await cleanQueue(item.broker, queue);
  try {
    const fill =
      item.system === 'bullmq'
        ? tsxCommand('peers/bullmq.ts', ['publish', queue, String(item.n - 1), 'bulk'])
        : tsxCommand('peers/ours.ts', ['publish', item.broker, queue, String(item.n - 1), 'batch']);
    await runChild(fill);
    // A receiver of the worker's events in this process, as Flower would be.
    const receiver = item.listen ? await listenToEvents(BROKERS[item.broker]) : undefined;
    const [command, args] = item.worker(queue, item.n);
    const worker = startChild(command, args);
    try {
      const done = await worker.next('done', 240_000);
      return done.rate as number;
    } finally {
      await worker.stop();
      await receiver?.stop();
    }
  } finally {
    await cleanQueue(item.broker, queue);
  }
}

/** `drain.ts [filter]`: only the cases whose id contains the filter (and those they pair with). */
const groups = alternationGroups(DRAIN_CASES, process.argv[2]);
const cases = groups.flat();
await runScript('drain', async (add) => {
  if (cases.some((item) => item.broker === 'amqp')) await createVhost();
  await withBenchCluster(
    cases.some((item) => item.broker === 'redis-cluster'),
    async () => {
      for (const group of groups) {
        const figures = group.map(
          ({ worker: _worker, listen: _listen, alternatesWith: _with, ...figure }) => ({
            ...figure,
            unit: 'msg/s' as const,
          }),
        );
        const measured = measureAlternating(figures, (index, run) =>
          drainOnce(group[index] as DrainCase, run),
        );
        for (const figure of measured) await add(figure);
      }
    },
  );
});
