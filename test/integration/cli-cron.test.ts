/**
 * `serverless-celery cron` as real processes on the real Redis (database 6): two cron processes
 * running at once publish each tick once between them. The long-running case waits for the next
 * minute boundary (cron ticks are minutes), so this file takes up to about 70 s.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { CLI_APP, runCli, startCli } from '../helpers/cli.js';
import { deleteKeysWithPrefix, deleteQueueKeys, redisUrl, uniqueQueue } from '../helpers/redis.js';

const DB = 6;
const keys = new RedisKeys();
const admin = new Redis(redisUrl(DB));
const queues: string[] = [];
const prefixes: string[] = [];

/** A queue and task prefix of the test's own, and the environment that names them. */
function ownApp() {
  const queue = uniqueQueue();
  const prefix = `cron_${randomBytes(4).toString('hex')}`;
  queues.push(queue);
  prefixes.push(prefix);
  return { queue, prefix, env: { SC_CLI_QUEUE: queue, SC_CLI_TASKS: prefix } };
}

/** Messages waiting in `queue` (priority 0 list: cron messages have no priority). */
async function waiting(queue: string): Promise<number> {
  let total = 0;
  for (const list of keys.queueLists(queue)) total += await admin.llen(list);
  return total;
}

afterAll(async () => {
  await deleteQueueKeys(admin, keys, queues);
  for (const prefix of prefixes) await deleteKeysWithPrefix(admin, `_sc.cron.${prefix}.`);
  await admin.quit();
});

describe('serverless-celery cron', () => {
  it('with --tick, two processes at once publish the tick once', async () => {
    // Prepare
    const { queue, prefix, env } = ownApp();
    const args = [
      'cron',
      '--tick',
      '2025-01-01T10:00:30Z',
      '--app',
      CLI_APP,
      '--broker',
      redisUrl(DB),
    ];

    // Act
    const results = await Promise.all([runCli(args, { env }), runCli(args, { env })]);

    // Assess
    expect(results.map((result) => result.code)).toEqual([0, 0]);
    const lines = results.map((result) => result.stdout.trim()).sort();
    expect(lines[0]).toMatch(
      new RegExp(
        `^2025-01-01T10:00:00\\.000Z  ${prefix}\\.tick  published [0-9a-f-]{36} \\(expires in 1m00s\\)$`,
      ),
    );
    expect(lines[1]).toBe(
      `2025-01-01T10:00:00.000Z  ${prefix}.tick  skipped: already published for this tick`,
    );
    expect(await waiting(queue)).toBe(1);
    expect(await admin.ttl(`_sc.cron.${prefix}.tick.2025-01-01T10:00:00.000Z`)).toBeGreaterThan(50);
  });

  it('two long-running processes publish each minute once between them, and stop on SIGTERM', async () => {
    // Prepare: not in the last seconds of a minute, so that both are up before the next tick.
    const second = new Date().getUTCSeconds();
    if (second >= 55) await new Promise((resolve) => setTimeout(resolve, (61 - second) * 1000));
    const { queue, prefix, env } = ownApp();
    const args = ['cron', '--app', CLI_APP, '--broker', redisUrl(DB)];
    const processes = [startCli(args, { env }), startCli(args, { env })];
    const tickLine = new RegExp(`^(\\S+Z)  ${prefix}\\.tick  (published|skipped)`);

    // Act
    await Promise.all(processes.map((cron) => cron.waitForLines(tickLine, 1, 75_000)));
    const results = await Promise.all(processes.map((cron) => cron.stop('SIGTERM')));

    // Assess
    expect(results.map((result) => result.code)).toEqual([0, 0]);
    const lines = results.flatMap((result) =>
      result.stdout.split('\n').filter((line) => tickLine.test(line)),
    );
    const byTick = new Map<string, string[]>();
    for (const line of lines) {
      const [, tick, outcome] = tickLine.exec(line) as RegExpExecArray;
      byTick.set(tick as string, [...(byTick.get(tick as string) ?? []), outcome as string]);
    }
    for (const outcomes of byTick.values()) {
      expect(outcomes.filter((outcome) => outcome === 'published')).toHaveLength(1);
    }
    expect(
      [...byTick.values()].some((outcomes) => outcomes.sort().join() === 'published,skipped'),
    ).toBe(true);
    expect(await waiting(queue)).toBe(byTick.size);
    for (const result of results) {
      expect(result.stderr).toContain(
        `cron: ${prefix}.tick (* * * * *); broker ${redisUrl(DB)}, lock ${redisUrl(DB)}`,
      );
      expect(result.stderr).toContain('cron: SIGTERM: stopping\ncron: stopped\n');
    }
  }, 85_000);
});
