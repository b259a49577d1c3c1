/**
 * The real CLI (`node src/cli/bin.mjs …`, child processes) with `--broker redis+cluster://…` on
 * a throw-away Redis Cluster of three masters: send → inspect → worker (results stored on the
 * cluster, read back by `result`) → dlq list/replay, naming the broker "Redis Cluster", every
 * key under the default `{celery}:` prefix; `cron --tick` from two processes locking each tick
 * once on the cluster; a cluster none of whose nodes answers, in one line; and
 * `worker --remote-control` answering real `celery inspect` (5.2.6, and 5.6.3 with
 * `CELERY56_PY`), whose kombu client talks to the master of `{celery}` with `global_keyprefix`
 * `{celery}:` (from a `--config` module the test writes to a temporary directory).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYTHON } from '../helpers/celery.js';
import { CLI_APP, type CliResult, type RunningCli, runCli, startCli } from '../helpers/cli.js';
import { freePort } from '../helpers/redis.js';
import {
  type ClusterNodeAddress,
  openClusterClient,
  type RedisCluster,
  startRedisCluster,
} from '../helpers/redis-cluster.js';
import { keySlot, slotOwner } from '../helpers/redis-cluster-slots.js';

/** The key prefix a cluster URL gets by default; kombu's `global_keyprefix` must equal it. */
const PREFIX = '{celery}:';
const CELERY_VERSIONS = [
  { version: '5.2.6', python: PYTHON },
  ...(process.env.CELERY56_PY ? [{ version: '5.6.3', python: process.env.CELERY56_PY }] : []),
];

let cluster: RedisCluster;
let admin: Cluster;
/** The master of the prefix's slot: where every key of ours lives, and kombu must connect. */
let owner: ClusterNodeAddress;
/** Holds the Celery config module `celery --config` imports. */
let configDir: string;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 });
  admin = openClusterClient(cluster);
  owner = await slotOwner(cluster, await keySlot(cluster, PREFIX));
  configDir = await mkdtemp(path.join(tmpdir(), 'sc-cluster-celeryconfig-'));
  await writeFile(
    path.join(configDir, 'cluster_celeryconfig.py'),
    `broker_transport_options = {'global_keyprefix': '${PREFIX}'}\n`,
  );
});

afterAll(async () => {
  admin?.disconnect();
  await cluster?.stop();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

/** The CLI on the cluster, with a queue and task prefix of its own. */
function cliOnCluster() {
  const queue = `sc-cluster-cli-${randomBytes(4).toString('hex')}`;
  const prefix = `cluster_${randomBytes(4).toString('hex')}`;
  const env = { SC_CLI_QUEUE: queue, SC_CLI_TASKS: prefix };
  const common = ['--app', CLI_APP, '--broker', cluster.url];
  return {
    queue,
    prefix,
    env,
    common,
    run: (args: string[]): Promise<CliResult> => runCli([...args, ...common], { env }),
    start: (args: string[]): RunningCli => startCli([...args, ...common], { env }),
  };
}

describe('serverless-celery --broker redis+cluster://', () => {
  it('sends, inspects, works and replays dead letters, naming the broker Redis Cluster', async () => {
    // Prepare
    const cli = cliOnCluster();
    const heading = `broker: Redis Cluster 127.0.0.1:${cluster.ports[0]} db 0`;
    const counts = async () => {
      const result = await cli.run(['inspect', '--json']);
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as { broker: unknown; queues: Record<string, unknown>[] };
    };

    // Act: commands that do not depend on each other run side by side (each starts a Node).
    const [added, failing] = await Promise.all([
      cli.run(['send', `${cli.prefix}.add`, '--kwargs', '{"x": 1, "y": 2}']),
      cli.run(['send', `${cli.prefix}.fail`]),
    ]);
    const [sent, table] = await Promise.all([counts(), cli.run(['inspect'])]);
    const backend = ['--result-backend', cluster.url];
    const worker = cli.start(['worker', '--invoke', 'local', ...backend]);
    await worker.waitForLines(/succeeded|dead-lettered/, 2);
    const stopped = await worker.stop('SIGTERM');
    const [worked, listed, dlqTable, result] = await Promise.all([
      counts(),
      cli.run(['dlq', 'list', '--json']),
      cli.run(['dlq', 'list']),
      cli.run(['result', added.stdout.trim(), ...backend, '--timeout', '5']),
    ]);
    const replayed = await cli.run(['dlq', 'replay']);
    const after = await counts();

    // Assess
    const failId = failing.stdout.trim();
    expect([added.code, failing.code, stopped.code], stopped.stderr).toEqual([0, 0, 0]);
    expect(sent.broker).toEqual({
      kind: 'redis',
      host: '127.0.0.1',
      port: cluster.ports[0],
      db: 0,
      tls: false,
      source: '--broker',
      cluster: true,
    });
    expect(sent.queues).toEqual([
      { queue: cli.queue, ready: 2, unacked: 0, delayed: 0, deadLettered: 0 },
    ]);
    expect(table.stdout.split('\n')[0]).toBe(heading);
    expect(worked.queues[0]).toMatchObject({ ready: 0, unacked: 0, deadLettered: 1 });
    expect(JSON.parse(result.stdout)).toEqual({
      id: added.stdout.trim(),
      state: 'SUCCESS',
      result: 3,
    });
    expect(JSON.parse(listed.stdout).entries).toEqual([
      expect.objectContaining({ id: failId, task: `${cli.prefix}.fail`, reason: 'excluded' }),
    ]);
    expect(dlqTable.stdout.split('\n')[0]).toBe(heading);
    expect(dlqTable.stdout).toContain(failId);
    expect(replayed.stdout).toBe(`replayed 1 dead letter(s) to ${cli.queue}\n`);
    expect(after.queues[0]).toMatchObject({ ready: 1, deadLettered: 0 });
    // The replayed message waits in the prefixed list, on the master of the prefix's slot.
    expect(await admin.llen(`${PREFIX}${cli.queue}`)).toBe(1);
  }, 90_000);

  it('cron --tick: two processes at once publish the tick once, locked on the cluster', async () => {
    // Prepare
    const cli = cliOnCluster();
    const args = ['cron', '--tick', '2025-01-01T10:00:30Z'];

    // Act
    const results = await Promise.all([cli.run(args), cli.run(args)]);

    // Assess
    expect(results.map((result) => result.code)).toEqual([0, 0]);
    const lines = results.map((result) => result.stdout.trim()).sort();
    expect(lines[0]).toMatch(
      new RegExp(`^2025-01-01T10:00:00\\.000Z  ${cli.prefix}\\.tick  published [0-9a-f-]{36} `),
    );
    expect(lines[1]).toBe(
      `2025-01-01T10:00:00.000Z  ${cli.prefix}.tick  skipped: already published for this tick`,
    );
    expect(await admin.llen(`${PREFIX}${cli.queue}`)).toBe(1);
    const lockKey = `_sc.cron.${cli.prefix}.tick.2025-01-01T10:00:00.000Z`;
    expect(await admin.ttl(lockKey)).toBeGreaterThan(50);
  });

  it('explains a cluster none of whose nodes answers in one line, without its password (exit 69)', async () => {
    // Prepare
    const [first, second] = [await freePort(), await freePort()];
    const url = `redis+cluster://:s3cret@127.0.0.1:${first},127.0.0.1:${second}/0`;

    // Act
    const result = await runCli(['inspect', '--app', CLI_APP, '--broker', url]);

    // Assess
    expect(result.code).toBe(69);
    expect(result.stderr).toMatch(
      new RegExp(
        `^error: broker redis\\+cluster://:\\*\\*\\*@127\\.0\\.0\\.1:${first},127\\.0\\.0\\.1:${second}/0 ` +
          'unavailable: inspect \\S+ failed: no node of the cluster answered',
      ),
    );
    expect(result.stderr).not.toContain('s3cret');
  });
});

describe('worker --remote-control on a cluster', () => {
  const node = `rc-${randomBytes(4).toString('hex')}@cluster`;
  let cli: ReturnType<typeof cliOnCluster>;
  let worker: RunningCli;

  beforeAll(() => {
    cli = cliOnCluster();
    worker = cli.start(['worker', '--invoke', 'local', '--remote-control', '-n', node]);
  });

  afterAll(async () => {
    await worker?.stop('SIGTERM');
  });

  describe.each(CELERY_VERSIONS)('celery $version inspect', ({ python }) => {
    it('pings our worker and lists its tasks', async () => {
      // Act: the worker may still be starting, so ping a few times.
      let ping = await celeryInspect(python, ['ping', '-d', node]);
      for (let attempt = 0; ping.code !== 0 && attempt < 10; attempt++) {
        ping = await celeryInspect(python, ['ping', '-d', node]);
      }
      const registered = await celeryInspect(python, ['registered', '-d', node]);

      // Assess
      expect(ping).toEqual({ code: 0, replies: { [node]: { ok: 'pong' } } });
      expect(registered).toEqual({
        code: 0,
        replies: { [node]: [`${cli.prefix}.add`, `${cli.prefix}.fail`, `${cli.prefix}.tick`] },
      });
    });
  });
});

/**
 * `celery --config cluster_celeryconfig -b redis://<owner>/0 inspect <args> --json`: kombu's
 * plain client, on the master that serves every `{celery}:` key.
 */
async function celeryInspect(python: string, args: readonly string[]) {
  const broker = `redis://${owner.host}:${owner.port}/0`;
  const command = ['-m', 'celery', '--config', 'cluster_celeryconfig', '-b', broker, 'inspect'];
  try {
    const { stdout } = await promisify(execFile)(
      python,
      [...command, ...args, '--json', '--timeout', '1.5'],
      { timeout: 30_000, env: { ...process.env, PYTHONPATH: configDir } },
    );
    return { code: 0, replies: JSON.parse(stdout) as Record<string, unknown> };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: `${failed.stdout}${failed.stderr}` };
  }
}
