/**
 * Drain rate: N no-op tasks already queued, one worker process runs and settles them all. The
 * rate is (N − 1) / (end of the last task − start of the first), taken inside the worker, so
 * start-up is left out for everyone. "Settled" is what each peer does: ours and BullMQ record
 * the outcome in the broker after the task ran; Celery acks before running (its default,
 * `acks_late=False`); celery-node acks on receipt (AMQP) or keeps no record at all (Redis).
 *
 * Queues are filled by our batch publisher (Celery protocol v2, which every Celery-speaking peer
 * reads) or by BullMQ's addBulk. Slow peers get a smaller N (the figure says which).
 */

import {
  BROKERS,
  type BrokerName,
  cleanQueue,
  createVhost,
  type Figure,
  listenToEvents,
  measure,
  PYTHON,
  RUNS,
  runChild,
  runScript,
  type System,
  scaled,
  startChild,
  tsxCommand,
} from './harness.js';

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
  /**
   * The worker sends Celery events and a receiver listens; its runs alternate with those of the
   * case named, the same worker without events, so that load on the machine hits both alike.
   */
  readonly eventsOf?: string;
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
    eventsOf: 'drain.redis.ours',
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
    eventsOf: 'drain.amqp.ours',
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
    const receiver = item.eventsOf ? await listenToEvents(BROKERS[item.broker]) : undefined;
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

/** Measures `base` and `withEvents` run by run, alternating: one figure each. */
async function measurePair(base: DrainCase, withEvents: DrainCase): Promise<Figure[]> {
  const samples: [number[], number[]] = [[], []];
  for (let run = 0; run < RUNS; run++) {
    samples[0].push(await drainOnce(base, run));
    samples[1].push(await drainOnce(withEvents, run));
  }
  return Promise.all(
    [base, withEvents].map(({ worker: _worker, eventsOf: _of, ...figure }, index) =>
      measure({ ...figure, unit: 'msg/s' }, async (run) => samples[index]?.[run] ?? Number.NaN),
    ),
  );
}

/** `drain.ts [filter]`: only the cases whose id contains the filter. */
const only = process.argv[2];
await runScript('drain', async (add) => {
  await createVhost();
  for (const item of DRAIN_CASES) {
    if (only && !item.id.includes(only)) continue;
    if (item.eventsOf) continue;
    const withEvents = DRAIN_CASES.find((other) => other.eventsOf === item.id);
    if (withEvents) {
      for (const figure of await measurePair(item, withEvents)) await add(figure);
      continue;
    }
    const { worker: _worker, ...figure } = item;
    await add(measure({ ...figure, unit: 'msg/s' }, (run) => drainOnce(item, run)));
  }
});
