/**
 * BullMQ's side, run as a child process (same commands as ours.ts):
 *
 *   bullmq.ts publish <queue> <n> <awaited|inflight|bulk>
 *   bullmq.ts worker  <queue> <n> <concurrency>
 *   bullmq.ts send    <queue> <n> <intervalMs>
 *
 * Redis only (BullMQ has no RabbitMQ backend). Keys live under the `bench-bull` prefix in the
 * benchmarks' database. Default job options: completed jobs are kept, as BullMQ does by default.
 */
import { Queue, Worker } from 'bullmq';
import { nowMs, paced, REDIS_URL, report } from '../harness.js';

const [command, name = 'bench.bullmq', nText = '1000', extra = ''] = process.argv.slice(2);
const n = Number(nText);
const { hostname, port, pathname } = new URL(REDIS_URL);
const connection = {
  host: hostname,
  port: Number(port || 6379),
  db: Number(pathname.slice(1) || 0),
  // BullMQ's workers block on Redis and must never give up on a command.
  maxRetriesPerRequest: null,
};
const prefix = 'bench-bull';
/** In flight at once in `inflight` mode; batch size in `bulk` mode. */
const WINDOW = 1000;

async function publish(mode: string): Promise<void> {
  const queue = new Queue(name, { connection, prefix });
  await queue.waitUntilReady();
  await queue.add('noop', {});
  report({ event: 'ready' });
  const started = nowMs();
  if (mode === 'awaited') {
    for (let index = 0; index < n; index++) await queue.add('noop', {});
  } else if (mode === 'inflight') {
    for (let index = 0; index < n; index += WINDOW) {
      const adds = [];
      for (let item = index; item < Math.min(n, index + WINDOW); item++) {
        adds.push(queue.add('noop', {}));
      }
      await Promise.all(adds);
    }
  } else {
    for (let index = 0; index < n; index += WINDOW) {
      const jobs = [];
      for (let item = index; item < Math.min(n, index + WINDOW); item++) {
        jobs.push({ name: 'noop', data: {} });
      }
      await queue.addBulk(jobs);
    }
  }
  const seconds = (nowMs() - started) / 1000;
  report({ event: 'result', rate: n / seconds, seconds });
  await queue.close();
}

async function send(intervalMs: number): Promise<void> {
  const queue = new Queue(name, { connection, prefix });
  await queue.waitUntilReady();
  report({ event: 'ready' });
  await paced(n, intervalMs, () => queue.add('noop', { sent: nowMs() }));
  report({ event: 'result', sent: n });
  await queue.close();
}

async function work(concurrency: number): Promise<void> {
  let first = 0;
  let count = 0;
  const latencies: number[] = [];
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const worker = new Worker(
    name,
    async (job) => {
      const started = nowMs();
      if (first === 0) first = started;
      const sent = (job.data as { sent?: unknown }).sent;
      if (typeof sent === 'number') latencies.push(started - sent);
    },
    { connection, prefix, concurrency },
  );
  // 'completed' is emitted once the job is moved to completed in Redis: settled.
  worker.on('completed', () => {
    if (++count === n) finish();
  });
  await worker.waitUntilReady();
  report({ event: 'ready' });
  await done;
  const last = nowMs();
  report({
    event: 'done',
    count,
    first,
    last,
    rate: (count - 1) / ((last - first) / 1000),
    latencies: latencies.length > 0 ? latencies : undefined,
  });
  await worker.close(true);
}

if (command === 'publish') await publish(extra || 'awaited');
else if (command === 'send') await send(Number(extra || 5));
else if (command === 'worker') await work(Number(extra || 1));
else throw new Error(`unknown command ${command}`);
