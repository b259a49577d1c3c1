/**
 * Delays at scale, on Redis: 1 000 000 messages with an eta an hour ahead.
 *
 * 1. Publish them (batches of 1000): they land in the queue's list, as kombu's do.
 * 2. Park them: our worker receives each, sees its eta ahead and parks it in the queue's delay
 *    sorted set (what every worker does with a message that is not due). Timed until the list
 *    is empty and the sorted set holds them all.
 * 3. Memory: Redis' `used_memory` with them parked, less before, per message.
 * 4. Promote: a broker whose clock runs two hours ahead calls `promoteDue` (1000 per call, the
 *    worker's default) until the set is empty: every message is due at once, the worst case.
 *
 * For comparison, BullMQ parks the same number of delayed jobs with addBulk (a job hash and a
 * delayed-set entry each) and promotes them with `promoteJobs`. One run each (the figures say
 * so): a run moves gigabytes through Redis.
 */
import { Queue } from 'bullmq';
import { RedisBroker } from '../src/brokers/redis/redis-broker.js';
import { parseBrokerConfig, type RedisBrokerConfig } from '../src/config/broker-config.js';
import {
  benchRedis,
  deleteKeys,
  type Figure,
  log,
  nowMs,
  REDIS_URL,
  round,
  runChild,
  runScript,
  scaled,
  startChild,
  tsxCommand,
  waitUntil,
} from './harness.js';

const QUEUE = 'bench.delays';
const HOUR_S = 3600;

/**
 * Redis' `used_memory`, once memory freed in the background (UNLINK of a big key, the previous
 * step's cleanup) is released: before that, a baseline would be too high.
 */
async function usedMemory(): Promise<number> {
  const redis = benchRedis();
  try {
    const field = async (name: string) =>
      Number(new RegExp(`${name}:(\\d+)`).exec(await redis.info('memory'))?.[1]);
    await waitUntil(
      async () => (await field('lazyfree_pending_objects')) === 0,
      60_000,
      'lazy free',
      100,
    );
    return await field('used_memory');
  } finally {
    redis.disconnect();
  }
}

function figure(
  id: string,
  system: Figure['system'],
  label: string,
  unit: Figure['unit'],
  value: number,
  n: number,
  note: string,
): Figure {
  const rounded = round(value);
  log(`${id}: ${rounded} ${unit}`);
  return {
    id,
    system,
    broker: 'redis',
    label,
    settings: 'only',
    unit,
    value: rounded,
    samples: [rounded],
    n,
    note,
  };
}

async function ours(n: number, add: (figure: Figure) => Promise<void>): Promise<void> {
  const redis = benchRedis();
  const config = parseBrokerConfig(REDIS_URL) as RedisBrokerConfig;
  const delayed = new RedisBroker({ config }).keys.delayed(QUEUE);
  try {
    await deleteKeys(redis, [`${QUEUE}*`, `_sc.delayed*${QUEUE}`]);
    const before = await usedMemory();
    let started = nowMs();
    await runChild(
      tsxCommand('peers/ours.ts', ['publish', 'redis', QUEUE, String(n), `eta${HOUR_S}`]),
      {},
      600_000,
    );
    const published = (nowMs() - started) / 1000;
    await add(
      figure(
        'delays.publish.ours',
        'ours',
        'publish with eta',
        'msg/s',
        n / published,
        n,
        'batches of 1000, into the list',
      ),
    );
    // The worker parks; the publisher's warm-up message (no eta) just runs.
    started = nowMs();
    const worker = startChild(
      ...tsxCommand('peers/ours.ts', ['worker', 'redis', QUEUE, '0', '100']),
    );
    try {
      await waitUntil(
        async () => (await redis.llen(QUEUE)) === 0 && (await redis.zcard(delayed)) >= n,
        900_000,
        'the delayed messages to be parked',
        200,
      );
    } finally {
      await worker.stop();
    }
    const parked = (nowMs() - started) / 1000;
    await add(
      figure(
        'delays.park.ours',
        'ours',
        'park (worker, concurrency 100)',
        'msg/s',
        n / parked,
        n,
        `${round(parked)} s for all`,
      ),
    );
    const bytes = (await usedMemory()) - before;
    const zset = Number(await redis.call('MEMORY', 'USAGE', delayed, 'SAMPLES', '0'));
    await add(
      figure(
        'delays.memory.ours',
        'ours',
        'Redis memory per parked message',
        'KiB',
        bytes / n / 1024,
        n,
        `${round(bytes / 2 ** 20)} MiB in all (used_memory); the sorted set alone ${round(zset / 2 ** 20)} MiB`,
      ),
    );
    const ahead = new RedisBroker({ config, now: () => Date.now() + 2 * HOUR_S * 1000 });
    try {
      started = nowMs();
      let moved = 0;
      for (
        let step = await ahead.promoteDue(QUEUE, 1000);
        step > 0;
        step = await ahead.promoteDue(QUEUE, 1000)
      ) {
        moved += step;
      }
      const seconds = (nowMs() - started) / 1000;
      await add(
        figure(
          'delays.promote.ours',
          'ours',
          'promote when due (promoteDue of 1000)',
          'msg/s',
          moved / seconds,
          moved,
          `${moved} promoted`,
        ),
      );
    } finally {
      await ahead.close();
    }
  } finally {
    await deleteKeys(redis, [
      `${QUEUE}*`,
      `_sc.delayed*${QUEUE}`,
      '_kombu.binding.bench.*',
      'unacked',
      'unacked_index',
    ]);
    redis.disconnect();
  }
}

async function bullmq(n: number, add: (figure: Figure) => Promise<void>): Promise<void> {
  const { hostname, port, pathname } = new URL(REDIS_URL);
  const connection = {
    host: hostname,
    port: Number(port || 6379),
    db: Number(pathname.slice(1) || 0),
  };
  const queue = new Queue(QUEUE, { connection, prefix: 'bench-bull' });
  const redis = benchRedis();
  try {
    await deleteKeys(redis, ['bench-bull:*']);
    await queue.waitUntilReady();
    const before = await usedMemory();
    let started = nowMs();
    for (let index = 0; index < n; index += 1000) {
      const jobs = Array.from({ length: Math.min(1000, n - index) }, () => ({
        name: 'noop',
        data: {},
        opts: { delay: HOUR_S * 1000 },
      }));
      await queue.addBulk(jobs);
    }
    const parked = (nowMs() - started) / 1000;
    await add(
      figure(
        'delays.park.bullmq',
        'bullmq',
        'park (addBulk of 1000, delay 1 h)',
        'msg/s',
        n / parked,
        n,
        `${round(parked)} s for all`,
      ),
    );
    const bytes = (await usedMemory()) - before;
    await add(
      figure(
        'delays.memory.bullmq',
        'bullmq',
        'Redis memory per delayed job',
        'KiB',
        bytes / n / 1024,
        n,
        `${round(bytes / 2 ** 20)} MiB in all`,
      ),
    );
    started = nowMs();
    await queue.promoteJobs({ count: 1000 });
    await waitUntil(
      async () => (await queue.getDelayedCount()) === 0,
      900_000,
      'BullMQ to promote',
      200,
    );
    const seconds = (nowMs() - started) / 1000;
    await add(
      figure(
        'delays.promote.bullmq',
        'bullmq',
        'promote (promoteJobs of 1000)',
        'msg/s',
        n / seconds,
        n,
        'all, regardless of due time',
      ),
    );
  } finally {
    await queue.close();
    await deleteKeys(redis, ['bench-bull:*']);
    redis.disconnect();
  }
}

await runScript('delays', async (add) => {
  const n = scaled(1_000_000);
  const collect = async (value: Figure) => add(value);
  await ours(n, collect).catch((error: unknown) => add(Promise.reject(error)));
  await bullmq(n, collect).catch((error: unknown) => add(Promise.reject(error)));
});
