/**
 * Publish rate: N no-op tasks from one producer process, timed inside that process until the
 * broker holds them all (ours and BullMQ resolve when the broker has them; Celery on AMQP, which
 * publishes without confirms by default, and celery-node, whose `sendTask` returns nothing to
 * wait on, are timed until the queue's length says so). Slow peers get a smaller N.
 */
import {
  BROKERS,
  type BrokerName,
  cleanQueue,
  createVhost,
  type Figure,
  measure,
  PYTHON,
  runChild,
  runScript,
  type System,
  scaled,
  tsxCommand,
} from './harness.js';

interface PublishCase {
  readonly id: string;
  readonly system: System;
  readonly broker: BrokerName;
  readonly label: string;
  readonly settings: Figure['settings'];
  readonly n: number;
  readonly command: (queue: string, n: number) => [string, string[]];
  readonly note?: string;
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

/** `publish.ts [filter]`: only the cases whose id contains the filter. */
const only = process.argv[2];
await runScript('publish', async (add) => {
  await createVhost();
  for (const item of CASES) {
    if (only && !item.id.includes(only)) continue;
    const { command, ...figure } = item;
    await add(
      measure({ ...figure, unit: 'msg/s' }, async (run) => {
        const queue = `bench.publish.${item.id.split('.').pop()}.${run}`;
        await cleanQueue(item.broker, queue);
        try {
          const result = await runChild(command(queue, item.n));
          return result.rate as number;
        } finally {
          await cleanQueue(item.broker, queue);
        }
      }),
    );
  }
});
