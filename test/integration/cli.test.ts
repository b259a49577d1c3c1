/**
 * The real CLI (`node src/cli/bin.mjs …`, child processes) against the real Redis and RabbitMQ:
 * send → inspect → worker --invoke local → dlq list/show/replay/purge, on the test app of
 * `test/fixtures-app/cli-app.ts` (one task that adds, one that always fails and is dead-lettered).
 * Redis: database 6, a queue of its own, its keys deleted afterwards; RabbitMQ: a throw-away vhost.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { CLI_APP, type CliResult, runCli, startCli } from '../helpers/cli.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { deleteQueueKeys, freePort, redisUrl, uniqueQueue } from '../helpers/redis.js';

const DB = 6;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Counts {
  readonly queue: string;
  readonly ready: number;
  readonly unacked: number | null;
  readonly delayed: number;
  readonly deadLettered: number;
}

interface DeadLetterJson {
  readonly id: string;
  readonly task: string;
  readonly reason: string;
  readonly retries: number;
  readonly errorType: string;
  readonly raw: string;
}

/** How the CLI names a broker: `Redis 127.0.0.1:6379 db 6`, `RabbitMQ 127.0.0.1:5672 vhost v`. */
function brokerName(url: string): string {
  const parsed = new URL(url);
  const where = parsed.pathname.replace(/^\//, '');
  return url.startsWith('redis')
    ? `Redis ${parsed.hostname}:${parsed.port} db ${where}`
    : `RabbitMQ ${parsed.hostname}:${parsed.port} vhost ${decodeURIComponent(where) || '/'}`;
}

/** The CLI on one broker, one queue and one task prefix. */
function cliOn(url: string) {
  const queue = uniqueQueue();
  const prefix = `cli_${randomBytes(4).toString('hex')}`;
  const env = { SC_CLI_QUEUE: queue, SC_CLI_TASKS: prefix };
  const common = ['--app', CLI_APP, '--broker', url];
  const run = (args: string[]): Promise<CliResult> => runCli([...args, ...common], { env });
  return {
    queue,
    prefix,
    run,
    /** Runs a worker until it printed `count` final outcomes, then stops it with SIGTERM. */
    async work(count: number): Promise<{ result: CliResult; lines: string[] }> {
      const worker = startCli(['worker', '--invoke', 'local', ...common], { env });
      const lines = await worker.waitForLines(/succeeded|dead-lettered/, count);
      return { result: await worker.stop('SIGTERM'), lines };
    },
    async counts(): Promise<Counts> {
      const result = await run(['inspect', '--json']);
      expect(result.code, result.stderr).toBe(0);
      const parsed = JSON.parse(result.stdout) as { queues: Counts[] };
      return parsed.queues[0] as Counts;
    },
  };
}

/** The whole flow, the same on both brokers. */
async function sendWorkAndManageDeadLetters(url: string): Promise<string> {
  const cli = cliOn(url);

  // send: two that run, one refused by the schema, one not due for an hour.
  const added = await cli.run(['send', `${cli.prefix}.add`, '--kwargs', '{"x": 1, "y": 2}']);
  const failing = await cli.run(['send', `${cli.prefix}.fail`]);
  const refused = await cli.run(['send', `${cli.prefix}.add`, '--kwargs', '{"x": "one"}']);
  const later = await cli.run([
    'send',
    `${cli.prefix}.add`,
    '--kwargs',
    '{"x": 2, "y": 2}',
    '--countdown',
    '3600',
  ]);
  expect([added.code, failing.code, refused.code, later.code], refused.stderr).toEqual([
    0, 0, 2, 0,
  ]);
  const failId = failing.stdout.trim();
  expect(added.stdout.trim()).toMatch(UUID);
  expect(failId).toMatch(UUID);
  expect(refused.stdout).toBe('');
  expect(refused.stderr).toMatch(/kwargs\.x: .*\n {2}kwargs\.y: /);
  const sent = await cli.counts();
  expect(sent.ready + sent.delayed).toBe(3);
  expect(sent.deadLettered).toBe(0);
  // Every table names the broker it read, never with its password.
  const table = await cli.run(['inspect']);
  expect(table.stdout.split('\n')[0]).toBe(`broker: ${brokerName(url)}`);
  expect(table.stdout + table.stderr).not.toContain('guest:guest');

  // worker: one line per final outcome; SIGTERM settles and exits 0.
  const first = await cli.work(2);
  expect(first.result.code, first.result.stderr).toBe(0);
  expect(first.result.stderr).toContain('worker: stopped');
  expect(first.lines.join('\n')).toMatch(
    new RegExp(`${cli.prefix}\\.add\\[[0-9a-f-]{36}\\]  retries 0/2  succeeded in \\d+ ms`),
  );
  expect(first.lines.join('\n')).toContain(
    `${cli.prefix}.fail[${failId}]  retries 0/3  dead-lettered: excluded (TypeError: the payload has no body)`,
  );
  const worked = await cli.counts();
  expect(worked).toMatchObject({ ready: 0, delayed: 1, deadLettered: 1 });
  if (url.startsWith('redis')) expect(worked.unacked).toBe(0);

  // dlq list / show
  const listed = await cli.run(['dlq', 'list', '--json']);
  const { broker, entries } = JSON.parse(listed.stdout) as {
    broker: Record<string, unknown>;
    entries: DeadLetterJson[];
  };
  expect(broker).toMatchObject({
    kind: url.startsWith('redis') ? 'redis' : 'rabbitmq',
    host: '127.0.0.1',
    source: '--broker',
  });
  expect(listed.stdout).not.toContain('guest:guest');
  expect(entries).toHaveLength(1);
  expect(entries[0]).toMatchObject({
    id: failId,
    task: `${cli.prefix}.fail`,
    reason: 'excluded',
    retries: 0,
    errorType: 'TypeError',
  });
  const dlqTable = await cli.run(['dlq', 'list']);
  expect(dlqTable.stdout.split('\n')[0]).toBe(`broker: ${brokerName(url)}`);
  expect(dlqTable.stdout).toMatch(
    new RegExp(
      `^\\S+Z\\s+${cli.queue}\\s+excluded\\s+${cli.prefix}\\.fail\\s+${failId}\\s+0\\s+TypeError: the payload has no body$`,
      'm',
    ),
  );
  const shown = await cli.run(['dlq', 'show', failId]);
  expect(shown.code).toBe(0);
  expect(shown.stdout).toContain(`broker:           ${brokerName(url)}\n`);
  expect(shown.stdout).toContain(`id:               ${failId}`);
  expect(shown.stdout).toContain('raw message:');
  const unknown = await cli.run(['dlq', 'show', 'no-such-id']);
  expect(unknown.code).toBe(1);

  // replay: back in the queue with its id; the worker dead-letters it again.
  const replayed = await cli.run(['dlq', 'replay']);
  expect(replayed.stdout).toBe(`replayed 1 dead letter(s) to ${cli.queue}\n`);
  expect(await cli.counts()).toMatchObject({ ready: 1, deadLettered: 0 });
  const second = await cli.work(1);
  expect(second.lines[0]).toContain(
    `${cli.prefix}.fail[${failId}]  retries 0/3  dead-lettered: excluded`,
  );

  // purge: refused off a terminal without --yes, done with it.
  const refusedPurge = await cli.run(['dlq', 'purge']);
  expect(refusedPurge.code).toBe(2);
  expect(refusedPurge.stderr).toBe(
    'error: refusing to purge without --yes: standard input is not a terminal\n',
  );
  expect((await cli.counts()).deadLettered).toBe(1);
  const purged = await cli.run(['dlq', 'purge', '--yes']);
  expect(purged.stdout).toBe(`purged 1 dead letter(s) of ${cli.queue}\n`);
  expect((await cli.counts()).deadLettered).toBe(0);
  return cli.queue;
}

describe('serverless-celery on Redis', () => {
  const admin = new Redis(redisUrl(DB));
  const queues: string[] = [];

  afterAll(async () => {
    await deleteQueueKeys(admin, new RedisKeys(), queues);
    await admin.quit();
  });

  it('sends, inspects, works and manages dead letters end to end', async () => {
    queues.push(await sendWorkAndManageDeadLetters(redisUrl(DB)));
  });

  it('says which broker it read when neither --broker nor BROKER_URL names one', async () => {
    // Act
    const result = await runCli(['inspect', '--app', CLI_APP, '--json'], {
      env: { BROKER_URL: '', SC_CLI_QUEUE: uniqueQueue() },
    });

    // Assess
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe(
      'note: no --broker and no BROKER_URL: using the local Redis redis://127.0.0.1:6379/0\n',
    );
    expect(JSON.parse(result.stdout).broker).toEqual({
      kind: 'redis',
      host: '127.0.0.1',
      port: 6379,
      db: 0,
      tls: false,
      source: 'default',
    });
  });

  it('explains an unreachable Redis in one line, with the command that starts one (exit 69)', async () => {
    // Prepare
    const port = await freePort();

    // Act
    const result = await runCli([
      'inspect',
      '--app',
      CLI_APP,
      '--broker',
      `redis://:s3cret@127.0.0.1:${port}/${DB}`,
    ]);

    // Assess
    expect(result.code).toBe(69);
    expect(result.stderr).toBe(
      `error: broker redis://:***@127.0.0.1:${port}/${DB} unavailable: inspect sc-cli-test failed: connection refused ` +
        `(is redis-server running?). Start one: redis-server --daemonize yes --bind 127.0.0.1 --port ${port} --save "" --appendonly no\n`,
    );
  });
});

describe('serverless-celery on RabbitMQ', () => {
  let vhost: TestVhost;

  beforeAll(async () => {
    vhost = await createTestVhost();
  });

  afterAll(async () => {
    await vhost.remove();
  });

  it('sends, inspects, works and manages dead letters end to end', async () => {
    await sendWorkAndManageDeadLetters(vhost.url);
  });

  it('explains an unreachable RabbitMQ in one line, with the command that starts one (exit 69)', async () => {
    // Prepare
    const port = await freePort();

    // Act
    const result = await runCli([
      'send',
      'cli_test.fail',
      '--app',
      CLI_APP,
      '--broker',
      `amqp://guest:guest@127.0.0.1:${port}/`,
    ]);

    // Assess
    expect(result.code).toBe(69);
    expect(result.stderr).toMatch(
      new RegExp(
        `^error: broker amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${port}/ unavailable: .*connection refused.*\\. Start one: rabbitmq-server -detached\\n$`,
      ),
    );
  });
});
