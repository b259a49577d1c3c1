/**
 * The floor: how fast the machine moves bare messages, with no task model at all.
 *
 * - ioredis, one connection: N awaited LPUSHes, N awaited BRPOPs (the list filled), and the
 *   latency LPUSH → BRPOP return with messages 5 ms apart (two connections, one process).
 * - `redis-benchmark -t lpush,rpop -c 50` (50 clients, pipelining off).
 * - amqplib: N publishes on a confirm channel (then one wait for all confirms), N deliveries
 *   consumed with prefetch 100 and an ack each, and the latency publish → delivery; socket
 *   noDelay on, as every AMQP client here is measured at its best.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect, type Options } from 'amqplib';
import { encodeAmqpMessage } from '../src/core/amqp-codec.js';
import { createTaskMessage } from '../src/core/message.js';
import {
  AMQP_URL,
  benchRedis,
  createVhost,
  deleteAmqpQueues,
  type Figure,
  log,
  measure,
  median,
  nowMs,
  percentile,
  REDIS_URL,
  RUNS,
  round,
  runScript,
  scaled,
  sleep,
} from './harness.js';

const run = promisify(execFile);
const QUEUE = 'bench.floor';
const INTERVAL_MS = 5;

async function redisPush(n: number): Promise<number> {
  const redis = benchRedis();
  try {
    await redis.del(QUEUE);
    const started = nowMs();
    for (let index = 0; index < n; index++) await redis.lpush(QUEUE, `message ${index}`);
    return n / ((nowMs() - started) / 1000);
  } finally {
    await redis.del(QUEUE);
    redis.disconnect();
  }
}

async function redisPop(n: number): Promise<number> {
  const redis = benchRedis();
  try {
    await redis.del(QUEUE);
    for (let index = 0; index < n; index += 1000) {
      await redis.lpush(QUEUE, ...Array.from({ length: 1000 }, (_, item) => `m${index + item}`));
    }
    const started = nowMs();
    for (let index = 0; index < n; index++) await redis.brpop(QUEUE, 1);
    return n / ((nowMs() - started) / 1000);
  } finally {
    await redis.del(QUEUE);
    redis.disconnect();
  }
}

async function redisLatency(n: number): Promise<number[]> {
  const producer = benchRedis();
  const consumer = benchRedis();
  const values: number[] = [];
  try {
    await producer.del(QUEUE);
    const consuming = (async () => {
      while (values.length < n) {
        const popped = await consumer.brpop(QUEUE, 5);
        if (popped) values.push(nowMs() - Number(popped[1]));
      }
    })();
    await sleep(200);
    const started = nowMs();
    for (let index = 0; index < n; index++) {
      const wait = started + index * INTERVAL_MS - nowMs();
      if (wait > 0) await sleep(wait);
      await producer.lpush(QUEUE, String(nowMs()));
    }
    await consuming;
    return values;
  } finally {
    await producer.del(QUEUE);
    producer.disconnect();
    consumer.disconnect();
  }
}

/** redis-benchmark's requests per second for LPUSH and RPOP, 50 clients. */
async function redisBenchmark(n: number): Promise<{ lpush: number; rpop: number }> {
  const { port, pathname } = new URL(REDIS_URL);
  const { stdout } = await run(
    'redis-benchmark',
    [
      '-p',
      port || '6379',
      '--dbnum',
      pathname.slice(1) || '0',
      '-t',
      'lpush,rpop',
      '-c',
      '50',
    ].concat(['-n', String(n), '--csv']),
    { timeout: 120_000 },
  );
  const rate = (test: string) => {
    const line = stdout.split('\n').find((row) => row.startsWith(`"${test}"`));
    return Number(line?.split(',')[1]?.replaceAll('"', ''));
  };
  // redis-benchmark's list is `mylist` in the benchmarks' database.
  const redis = benchRedis();
  await redis.del('mylist');
  redis.disconnect();
  return { lpush: rate('LPUSH'), rpop: rate('RPOP') };
}

async function amqp<T>(work: (connection: Awaited<ReturnType<typeof connect>>) => Promise<T>) {
  const connection = await connect(AMQP_URL, { noDelay: true });
  try {
    const channel = await connection.createChannel();
    await channel.assertQueue(QUEUE, { durable: true });
    await channel.purgeQueue(QUEUE);
    await channel.close();
    return await work(connection);
  } finally {
    await connection.close();
  }
}

/** A bare message: a tiny body, no headers. */
const BARE = {
  content: Buffer.from(JSON.stringify([[], {}, { callbacks: null, errbacks: null }])),
  options: { deliveryMode: 2 },
};
/**
 * A Celery-shaped message: what our producer writes for a no-op task, Celery's 16 headers
 * included. RabbitMQ spends about three times as long on each of these as on a bare one.
 */
const CELERY = encodeAmqpMessage(
  createTaskMessage({ task: 'bench.noop', queue: QUEUE }),
  new Date(),
) as { content: Buffer; options: Options.Publish };
type Shape = { content: Buffer; options: Options.Publish };

async function amqpPublish(n: number, shape: Shape): Promise<number> {
  return amqp(async (connection) => {
    const channel = await connection.createConfirmChannel();
    const started = nowMs();
    for (let index = 0; index < n; index++) {
      if (!channel.publish('', QUEUE, shape.content, shape.options)) {
        await new Promise((resolve) => channel.once('drain', resolve));
      }
    }
    await channel.waitForConfirms();
    return n / ((nowMs() - started) / 1000);
  });
}

async function amqpConsume(n: number, shape: Shape): Promise<number> {
  return amqp(async (connection) => {
    const publisher = await connection.createConfirmChannel();
    for (let index = 0; index < n; index++)
      publisher.publish('', QUEUE, shape.content, shape.options);
    await publisher.waitForConfirms();
    const channel = await connection.createChannel();
    await channel.prefetch(100);
    let count = 0;
    let started = 0;
    await new Promise<void>((resolve) => {
      void channel.consume(QUEUE, (message) => {
        if (!message) return;
        if (started === 0) started = nowMs();
        channel.ack(message);
        if (++count === n) resolve();
      });
    });
    return (n - 1) / ((nowMs() - started) / 1000);
  });
}

async function amqpLatency(n: number): Promise<number[]> {
  return amqp(async (connection) => {
    const values: number[] = [];
    const channel = await connection.createChannel();
    await channel.prefetch(100);
    const consumed = new Promise<void>((resolve) => {
      void channel.consume(QUEUE, (message) => {
        if (!message) return;
        values.push(nowMs() - Number(message.content.toString()));
        channel.ack(message);
        if (values.length === n) resolve();
      });
    });
    const publisher = await connection.createConfirmChannel();
    await sleep(200);
    const started = nowMs();
    for (let index = 0; index < n; index++) {
      const wait = started + index * INTERVAL_MS - nowMs();
      if (wait > 0) await sleep(wait);
      publisher.publish('', QUEUE, Buffer.from(String(nowMs())), { deliveryMode: 2 });
      await publisher.waitForConfirms();
    }
    await consumed;
    return values;
  });
}

async function latencyFigure(
  figure: Pick<Figure, 'id' | 'broker' | 'label'>,
  sample: () => Promise<number[]>,
  n: number,
): Promise<Figure> {
  const p50s: number[] = [];
  const p99s: number[] = [];
  for (let index = 0; index < RUNS; index++) {
    const values = await sample();
    p50s.push(round(percentile(values, 50)));
    p99s.push(round(percentile(values, 99)));
  }
  log(`${figure.id}: p50 ${median(p50s)} ms, p99 ${median(p99s)} ms`);
  return {
    ...figure,
    system: 'floor',
    settings: 'only',
    unit: 'ms',
    value: median(p50s),
    p99: median(p99s),
    samples: p50s,
    n,
    note: `p99 per run: ${p99s.join(', ')}`,
  };
}

await runScript('floor', async (add) => {
  await createVhost();
  const n = scaled(20_000);
  const base = { system: 'floor', settings: 'only', unit: 'msg/s', n } as const;
  await add(
    measure(
      { ...base, id: 'floor.redis.lpush', broker: 'redis', label: 'raw ioredis LPUSH, awaited' },
      () => redisPush(n),
    ),
  );
  await add(
    measure(
      { ...base, id: 'floor.redis.brpop', broker: 'redis', label: 'raw ioredis BRPOP, awaited' },
      () => redisPop(n),
    ),
  );
  await add(
    latencyFigure(
      { id: 'latency.redis.floor', broker: 'redis', label: 'raw ioredis LPUSH → BRPOP' },
      () => redisLatency(scaled(1000)),
      scaled(1000),
    ),
  );
  const benchmarks: { lpush: number; rpop: number }[] = [];
  const once = async () => {
    if (benchmarks.length < RUNS) benchmarks.push(await redisBenchmark(scaled(200_000)));
  };
  await add(
    measure(
      {
        ...base,
        n: scaled(200_000),
        id: 'floor.redis.benchmark-lpush',
        broker: 'redis',
        label: 'redis-benchmark LPUSH -c 50',
      },
      async (index) => {
        await once();
        return benchmarks[index]?.lpush ?? Number.NaN;
      },
    ),
  );
  await add(
    measure(
      {
        ...base,
        n: scaled(200_000),
        id: 'floor.redis.benchmark-rpop',
        broker: 'redis',
        label: 'redis-benchmark RPOP -c 50',
      },
      async (index) => benchmarks[index]?.rpop ?? Number.NaN,
    ),
  );
  for (const [suffix, shape, what] of [
    ['', BARE, 'bare'],
    ['-celery', CELERY, 'Celery-shaped'],
  ] as const) {
    await add(
      measure(
        {
          ...base,
          id: `floor.amqp.publish${suffix}`,
          broker: 'amqp',
          label: `raw amqplib publish, confirmed (${what})`,
        },
        () => amqpPublish(n, shape),
      ),
    );
    await add(
      measure(
        {
          ...base,
          id: `floor.amqp.consume${suffix}`,
          broker: 'amqp',
          label: `raw amqplib, prefetch 100, ack each (${what})`,
        },
        () => amqpConsume(n, shape),
      ),
    );
  }
  await add(
    latencyFigure(
      { id: 'latency.amqp.floor', broker: 'amqp', label: 'raw amqplib publish → delivery' },
      () => amqpLatency(scaled(1000)),
      scaled(1000),
    ),
  );
  await deleteAmqpQueues([QUEUE]);
});
