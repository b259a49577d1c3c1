/**
 * celery-node's side, run as a child process:
 *
 *   celery-node.ts publish <redis|amqp> <queue> <n> <default|nodelay>
 *   celery-node.ts worker  <redis|amqp> <queue> <n> <default|nodelay>
 *   celery-node.ts send    <redis|amqp> <queue> <n> <intervalMs>
 *
 * `sendTask` is fire-and-forget, so a publish run ends when the broker holds all n messages
 * (polled from a connection of our own). Its worker acks on receipt (AMQP) or holds no record
 * at all (Redis BRPOP), and stores every result: here in the benchmarks' Redis database (its
 * default, an AMQP backend, would declare one queue per task). `nodelay` turns Nagle's algorithm
 * off on its AMQP socket (celery-node leaves it on: a worker acks at ~45/s otherwise).
 */
import { connect } from 'amqplib';
import { createClient, createWorker } from 'celery-node';
import { Redis } from 'ioredis';
import {
  BROKERS,
  type BrokerName,
  NOOP_TASK,
  nowMs,
  paced,
  REDIS_URL,
  report,
  sleep,
} from '../harness.js';

const [command, brokerName, queue = 'bench.celery-node', nText = '1000', extra = ''] =
  process.argv.slice(2);
const n = Number(nText);
const url = BROKERS[brokerName as BrokerName];
if (!url) throw new Error(`unknown broker ${brokerName}`);

/** Options celery-node hands to ioredis or amqplib's connect. */
function brokerOptions(mode: string): Record<string, unknown> {
  return brokerName === 'amqp' && mode === 'nodelay' ? { noDelay: true } : {};
}

/** Messages waiting in the queue, read from a connection of our own. */
async function counter(): Promise<{ count(): Promise<number>; close(): Promise<void> }> {
  if (brokerName === 'redis') {
    const redis = new Redis(url as string);
    return { count: () => redis.llen(queue), close: async () => void redis.disconnect() };
  }
  const connection = await connect(url as string);
  const channel = await connection.createChannel();
  return {
    count: async () => (await channel.checkQueue(queue)).messageCount,
    close: () => connection.close(),
  };
}

async function publish(mode: string): Promise<void> {
  const client = createClient(url as string, REDIS_URL, queue);
  client.conf.CELERY_BROKER_OPTIONS = brokerOptions(mode);
  await client.isReady();
  client.sendTask(NOOP_TASK, [], {});
  const waiting = await counter();
  while ((await waiting.count()) < 1) await sleep(5);
  report({ event: 'ready' });
  const started = nowMs();
  for (let index = 0; index < n; index++) client.sendTask(NOOP_TASK, [], {});
  const sent = nowMs();
  while ((await waiting.count()) < n + 1) await sleep(2);
  const seconds = (nowMs() - started) / 1000;
  report({ event: 'result', rate: n / seconds, seconds, callsSeconds: (sent - started) / 1000 });
  await waiting.close();
  await client.disconnect();
}

async function send(intervalMs: number): Promise<void> {
  const client = createClient(url as string, REDIS_URL, queue);
  client.conf.CELERY_BROKER_OPTIONS = brokerOptions('nodelay');
  await client.isReady();
  report({ event: 'ready' });
  await paced(n, intervalMs, () => client.sendTask(NOOP_TASK, [], { sent: nowMs() }));
  await sleep(200);
  report({ event: 'result', sent: n });
  await client.disconnect();
}

async function work(mode: string): Promise<void> {
  let first = 0;
  let count = 0;
  const latencies: number[] = [];
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const worker = createWorker(url as string, REDIS_URL, queue);
  worker.conf.CELERY_BROKER_OPTIONS = brokerOptions(mode);
  worker.register(NOOP_TASK, (kwargs: { sent?: unknown }) => {
    const started = nowMs();
    if (first === 0) first = started;
    if (typeof kwargs?.sent === 'number') latencies.push(started - kwargs.sent);
    if (++count === n) finish();
  });
  await worker.isReady();
  void worker.start();
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
  // celery-node has no way to stop its worker: exit, once stdout (busy with its per-task log
  // lines) has taken the report.
  process.stdout.write('', () => process.exit(0));
}

if (command === 'publish') await publish(extra || 'default');
else if (command === 'send') await send(Number(extra || 5));
else if (command === 'worker') await work(extra || 'default');
else throw new Error(`unknown command ${command}`);
