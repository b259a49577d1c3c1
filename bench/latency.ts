/**
 * Latency on an idle worker: N tasks published 5 ms apart by each peer's own producer; the
 * producer stamps the time right before it publishes (`sent`, unix ms) and the worker takes the
 * difference when the task starts. Producer and worker are separate processes on one machine,
 * so their clocks agree. The raw clients carry the same Celery-shaped bytes the same way (two
 * processes): the floor any Celery-compatible worker on this machine starts from. The first 20
 * messages warm both up and are left out. p50 and p99 per run; the figure is the median of the
 * runs.
 */
import {
  BROKERS,
  type BrokerName,
  cleanQueue,
  createVhost,
  type Figure,
  log,
  median,
  PYTHON,
  percentile,
  RUNS,
  round,
  runScript,
  type System,
  scaled,
  sleep,
  startChild,
  tsxCommand,
} from './harness.js';

const INTERVAL_MS = 5;
/**
 * Messages sent first and left out of the figures: a fresh process's first tasks run through
 * code not yet compiled and connections not yet warm, for every peer alike.
 */
const WARMUP = 20;

interface LatencyCase {
  readonly id: string;
  readonly system: System;
  readonly broker: BrokerName;
  readonly label: string;
  readonly worker: (queue: string, n: number) => [string, string[]];
  readonly sender: (queue: string, n: number) => [string, string[]];
}

const python = (command: string, broker: BrokerName, queue: string, n: number) =>
  [
    PYTHON,
    [
      'peers/celery_bench.py',
      command,
      '--broker',
      BROKERS[broker],
      '--queue',
      queue,
      '--n',
      String(n),
      '--interval-ms',
      String(INTERVAL_MS),
    ],
  ] as [string, string[]];

const CASES: readonly LatencyCase[] = (['redis', 'amqp'] as const).flatMap((broker) => [
  {
    id: `latency.${broker}.ours`,
    system: 'ours' as const,
    broker,
    label: 'ours, local worker',
    worker: (queue: string, n: number) =>
      tsxCommand('peers/ours.ts', ['worker', broker, queue, String(n), '10']),
    sender: (queue: string, n: number) =>
      tsxCommand('peers/ours.ts', ['send', broker, queue, String(n), String(INTERVAL_MS)]),
  },
  {
    id: `latency.${broker}.celery`,
    system: 'celery' as const,
    broker,
    label: 'Celery --pool=solo',
    worker: (queue: string, n: number) => python('worker', broker, queue, n),
    sender: (queue: string, n: number) => python('send', broker, queue, n),
  },
  {
    id: `latency.${broker}.celery-node`,
    system: 'celery-node' as const,
    broker,
    label: broker === 'amqp' ? 'celery-node, socket noDelay' : 'celery-node',
    worker: (queue: string, n: number) =>
      tsxCommand('peers/celery-node.ts', ['worker', broker, queue, String(n), 'nodelay']),
    sender: (queue: string, n: number) =>
      tsxCommand('peers/celery-node.ts', ['send', broker, queue, String(n), String(INTERVAL_MS)]),
  },
  {
    id: `latency.${broker}.raw`,
    system: 'floor' as const,
    broker,
    label:
      broker === 'redis'
        ? 'raw ioredis LPUSH → BRPOP, two processes, Celery-shaped'
        : 'raw amqplib publish → delivery, two processes, Celery-shaped',
    worker: (queue: string, n: number) =>
      tsxCommand('peers/raw.ts', ['worker', broker, queue, String(n)]),
    sender: (queue: string, n: number) =>
      tsxCommand('peers/raw.ts', ['send', broker, queue, String(n), String(INTERVAL_MS)]),
  },
  ...(broker === 'redis'
    ? [
        {
          id: 'latency.redis.bullmq',
          system: 'bullmq' as const,
          broker,
          label: 'BullMQ concurrency 1',
          worker: (queue: string, n: number) =>
            tsxCommand('peers/bullmq.ts', ['worker', queue, String(n), '1']),
          sender: (queue: string, n: number) =>
            tsxCommand('peers/bullmq.ts', ['send', queue, String(n), String(INTERVAL_MS)]),
        },
      ]
    : []),
]);

/** One run: an idle worker, then the sender; returns every publish → start latency. */
async function latencies(item: LatencyCase, n: number, run: number): Promise<number[]> {
  const queue = `bench.latency.${item.id.split('.').pop()}.${run}`;
  await cleanQueue(item.broker, queue);
  const worker = startChild(...item.worker(queue, n + WARMUP));
  try {
    await worker.next('ready', 60_000);
    // Let the worker settle into its idle wait before the first message.
    await sleep(500);
    const sender = startChild(...item.sender(queue, n + WARMUP));
    try {
      await sender.next('result', 60_000 + n * INTERVAL_MS * 2);
    } finally {
      await sender.stop();
    }
    const done = await worker.next('done', 30_000);
    return (done.latencies as number[]).slice(WARMUP);
  } finally {
    await worker.stop();
    await cleanQueue(item.broker, queue);
  }
}

/** `latency.ts [filter]`: only the cases whose id contains the filter. */
const only = process.argv[2];
await runScript('latency', async (add) => {
  await createVhost();
  const n = scaled(1000);
  for (const item of CASES) {
    if (only && !item.id.includes(only)) continue;
    const { worker: _worker, sender: _sender, ...rest } = item;
    await add(
      (async (): Promise<Figure> => {
        const p50s: number[] = [];
        const p99s: number[] = [];
        for (let run = 0; run < RUNS; run++) {
          const values = await latencies(item, n, run);
          p50s.push(round(percentile(values, 50)));
          p99s.push(round(percentile(values, 99)));
        }
        const figure: Figure = {
          ...rest,
          settings: 'only',
          unit: 'ms',
          value: median(p50s),
          p99: median(p99s),
          samples: p50s,
          n,
          note: `p99 per run: ${p99s.join(', ')}`,
        };
        log(`${figure.id}: p50 ${figure.value} ms, p99 ${figure.p99} ms (${p50s.join(', ')})`);
        return figure;
      })(),
    );
  }
});
