/**
 * Publish rate: N no-op tasks from one producer process, timed inside that process until the
 * broker holds them all (ours and BullMQ resolve when the broker has them; Celery on AMQP, which
 * publishes without confirms by default, and celery-node, whose `sendTask` returns nothing to
 * wait on, are timed until the queue's length says so). Slow peers get a smaller N. Ours on the
 * benchmarks' Redis Cluster takes turns, run by run, with ours on the single node.
 */
import { alternationGroups, measureAlternating } from './alternating.js';
import {
  BROKERS,
  type BrokerName,
  cleanQueue,
  createVhost,
  type Figure,
  PYTHON,
  runChild,
  runScript,
  type System,
  scaled,
  tsxCommand,
} from './harness.js';
import { withBenchCluster } from './redis-cluster.js';

interface PublishCase {
  readonly id: string;
  readonly system: System;
  readonly broker: BrokerName;
  readonly label: string;
  readonly settings: Figure['settings'];
  readonly n: number;
  readonly command: (queue: string, n: number) => [string, string[]];
  readonly note?: string;
  /** The case this one is compared with: their runs alternate, so load hits both alike. */
  readonly alternatesWith?: string;
}

const ours = (broker: BrokerName, mode: string) => (queue: string, n: number) =>
  tsxCommand('peers/ours.ts', ['publish', broker, queue, String(n), mode]);
const celery =
  (broker: BrokerName) =>
  (queue: string, n: number): [string, string[]] => [
    PYTHON,
    [
      'peers/celery_bench.py',
      'publish',
      '--broker',
      BROKERS[broker],
      '--queue',
      queue,
      '--n',
      String(n),
    ],
  ];
const celeryNode = (broker: BrokerName, mode: string) => (queue: string, n: number) =>
  tsxCommand('peers/celery-node.ts', ['publish', broker, queue, String(n), mode]);
const bullmq = (mode: string) => (queue: string, n: number) =>
  tsxCommand('peers/bullmq.ts', ['publish', queue, String(n), mode]);

const CASES: readonly PublishCase[] = [
  {
    id: 'publish.redis.ours-single',
    system: 'ours',
    broker: 'redis',
    label: 'ours, one at a time',
    settings: 'default',
    n: scaled(20_000),
    command: ours('redis', 'single'),
  },
  {
    id: 'publish.redis.ours-batch',
    system: 'ours',
    broker: 'redis',
    label: 'ours, batches of 1000',
    settings: 'best',
    n: scaled(20_000),
    command: ours('redis', 'batch'),
  },
  {
    id: 'publish.redis-cluster.ours-batch',
    system: 'ours',
    broker: 'redis-cluster',
    label: 'ours, batches of 1000, Redis Cluster (3 masters)',
    settings: 'best',
    n: scaled(20_000),
    command: ours('redis-cluster', 'batch'),
    note: 'own three-master cluster, key prefix {celery}:',
    alternatesWith: 'publish.redis.ours-batch',
  },
  {
    id: 'publish.redis.celery',
    system: 'celery',
    broker: 'redis',
    label: 'Celery send_task',
    settings: 'only',
    n: scaled(20_000),
    command: celery('redis'),
  },
  {
    id: 'publish.redis.celery-node',
    system: 'celery-node',
    broker: 'redis',
    label: 'celery-node sendTask',
    settings: 'only',
    n: scaled(20_000),
    command: celeryNode('redis', 'default'),
    note: 'fire-and-forget',
  },
  {
    id: 'publish.redis.bullmq-awaited',
    system: 'bullmq',
    broker: 'redis',
    label: 'BullMQ add, awaited',
    settings: 'default',
    n: scaled(20_000),
    command: bullmq('awaited'),
  },
  {
    id: 'publish.redis.bullmq-inflight',
    system: 'bullmq',
    broker: 'redis',
    label: 'BullMQ add, 1000 in flight',
    settings: 'best',
    n: scaled(20_000),
    command: bullmq('inflight'),
  },
  {
    id: 'publish.redis.bullmq-bulk',
    system: 'bullmq',
    broker: 'redis',
    label: 'BullMQ addBulk of 1000',
    settings: 'best',
    n: scaled(20_000),
    command: bullmq('bulk'),
  },
  {
    id: 'publish.amqp.ours-single',
    system: 'ours',
    broker: 'amqp',
    label: 'ours, one at a time (confirmed)',
    settings: 'default',
    n: scaled(5_000),
    command: ours('amqp', 'single'),
  },
  {
    id: 'publish.amqp.ours-batch',
    system: 'ours',
    broker: 'amqp',
    label: 'ours, batches of 1000 (confirmed)',
    settings: 'best',
    n: scaled(20_000),
    command: ours('amqp', 'batch'),
  },
  {
    id: 'publish.amqp.celery',
    system: 'celery',
    broker: 'amqp',
    label: 'Celery send_task (no confirms)',
    settings: 'only',
    n: scaled(20_000),
    command: celery('amqp'),
  },
  {
    id: 'publish.amqp.celery-node',
    system: 'celery-node',
    broker: 'amqp',
    label: 'celery-node sendTask',
    settings: 'default',
    n: scaled(300),
    command: celeryNode('amqp', 'default'),
    note: "declares the queue before every publish; Nagle's algorithm on",
  },
  {
    id: 'publish.amqp.celery-node-nodelay',
    system: 'celery-node',
    broker: 'amqp',
    label: 'celery-node sendTask, socket noDelay',
    settings: 'best',
    n: scaled(5_000),
    command: celeryNode('amqp', 'nodelay'),
  },
];

/** One run: publish `item.n` into a fresh queue; the publisher's own rate. */
async function publishOnce(item: PublishCase, run: number): Promise<number> {
  const queue = `bench.publish.${item.id.split('.').pop()}.${run}`;
  await cleanQueue(item.broker, queue);
  try {
    const result = await runChild(item.command(queue, item.n));
    return result.rate as number;
  } finally {
    await cleanQueue(item.broker, queue);
  }
}

/** `publish.ts [filter]`: only the cases whose id contains the filter (and those they pair with). */
const groups = alternationGroups(CASES, process.argv[2]);
const cases = groups.flat();
await runScript('publish', async (add) => {
  if (cases.some((item) => item.broker === 'amqp')) await createVhost();
  await withBenchCluster(
    cases.some((item) => item.broker === 'redis-cluster'),
    async () => {
      for (const group of groups) {
        const figures = group.map(({ command: _command, alternatesWith: _with, ...figure }) => ({
          ...figure,
          unit: 'msg/s' as const,
        }));
        const measured = measureAlternating(figures, (index, run) =>
          publishOnce(group[index] as PublishCase, run),
        );
        for (const figure of measured) await add(figure);
      }
    },
  );
});
