/**
 * The raw clients' side of the latency benchmark, run as a child process, so the floor is
 * measured the way every peer is: producer and worker in two processes, Celery-shaped messages.
 *
 *   raw.ts worker <redis|amqp> <queue> <n>                 BRPOP / consume (prefetch 100, ack
 *                                                          each), read the stamp, nothing else
 *   raw.ts send   <redis|amqp> <queue> <n> <intervalMs>    LPUSH / confirmed publish of the
 *                                                          bytes our producer writes
 *
 * The messages are encoded by our codec (the same bytes as ours.ts sends, kwargs `sent` = unix
 * ms); the worker only parses the body for the stamp: no receive script, no unacked record, no
 * task model. What ours adds on top of this is our whole cost.
 */
import { connect, type Options } from 'amqplib';
import { Redis } from 'ioredis';
import { encodeAmqpMessage } from '../../src/core/amqp-codec.js';
import { createTaskMessage } from '../../src/core/message.js';
import { encodeRedisMessage } from '../../src/core/redis-codec.js';
import { AMQP_URL, NOOP_TASK, nowMs, paced, REDIS_URL, report } from '../harness.js';

const [command, broker, queue = 'bench.raw', nText = '1000', extra = ''] = process.argv.slice(2);
const n = Number(nText);
if (broker !== 'redis' && broker !== 'amqp') throw new Error(`unknown broker ${broker}`);

/** The `sent` stamp of a Celery protocol v2 body (`[args, kwargs, embed]`). */
function stampOf(body: string): number {
  const [, kwargs] = JSON.parse(body) as [unknown, { sent?: unknown }];
  if (typeof kwargs?.sent !== 'number') throw new Error('message without a sent stamp');
  return kwargs.sent;
}

function message() {
  return createTaskMessage({ task: NOOP_TASK, queue, kwargs: { sent: nowMs() } });
}

async function redisWorker(): Promise<void> {
  const redis = new Redis(REDIS_URL);
  const latencies: number[] = [];
  try {
    await redis.ping();
    report({ event: 'ready' });
    while (latencies.length < n) {
      const popped = await redis.brpop(queue, 1);
      if (!popped) continue;
      const envelope = JSON.parse(popped[1]) as { body: string };
      const started = nowMs();
      latencies.push(started - stampOf(Buffer.from(envelope.body, 'base64').toString('utf8')));
    }
    report({ event: 'done', count: latencies.length, latencies });
  } finally {
    redis.disconnect();
  }
}

async function redisSend(intervalMs: number): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    await redis.ping();
    report({ event: 'ready' });
    await paced(n, intervalMs, () => {
      const encoded = encodeRedisMessage(message());
      return redis.lpush(encoded.key, encoded.envelope);
    });
    report({ event: 'result', sent: n });
  } finally {
    redis.disconnect();
  }
}

async function amqpWorker(): Promise<void> {
  const connection = await connect(AMQP_URL, { noDelay: true });
  const latencies: number[] = [];
  try {
    const channel = await connection.createChannel();
    await channel.assertQueue(queue, { durable: true });
    await channel.prefetch(100);
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    await channel.consume(queue, (delivery) => {
      if (!delivery) return;
      latencies.push(nowMs() - stampOf(delivery.content.toString('utf8')));
      channel.ack(delivery);
      if (latencies.length === n) finish();
    });
    report({ event: 'ready' });
    await done;
    report({ event: 'done', count: latencies.length, latencies });
  } finally {
    await connection.close();
  }
}

async function amqpSend(intervalMs: number): Promise<void> {
  const connection = await connect(AMQP_URL, { noDelay: true });
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true });
    report({ event: 'ready' });
    await paced(n, intervalMs, () => {
      const encoded = encodeAmqpMessage(message());
      channel.publish('', queue, encoded.content, encoded.options as Options.Publish);
      return channel.waitForConfirms();
    });
    report({ event: 'result', sent: n });
  } finally {
    await connection.close();
  }
}

if (command === 'worker') await (broker === 'redis' ? redisWorker() : amqpWorker());
else if (command === 'send') await (broker === 'redis' ? redisSend : amqpSend)(Number(extra || 5));
else throw new Error(`unknown command ${command}`);
