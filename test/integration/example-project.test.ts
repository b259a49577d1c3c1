/**
 * The example service `examples/orders-service` as a user's project: this repository packed
 * (`npm pack`, whose `prepack` builds), the example copied into a fresh folder of the OS temp
 * directory beside the tarball (its package.json names it `file:../../serverless-celery-<version>.tgz`,
 * as in this repository), `npm install` from its own package.json (the registry, or npm's cache
 * of it), and nothing of this repository's sources or `node_modules` in reach. Then what its
 * README says a user does: type-check with its own TypeScript, send a task with the installed
 * CLI and run it with the CLI's worker, `npm start` (`serverless-celery dev`: its functions in
 * serverless-offline), package with its own osls, and read the template.
 *
 * Redis: database 12. The CLI worker uses a queue of the test's own (`--queue` / `--queues`);
 * `dev` drains the example's `orders` queue, emptied before and after. Takes about 45 s (pack 8 s,
 * install 20–35 s from npm's cache or the registry, shared by every test).
 */
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { ROOT } from '../helpers/cli.js';
import {
  actionsOf,
  functionArn,
  functionOf,
  functionsByKey,
  iamStatements,
  type PackagedService,
  readPackagedService,
  resourcesOfType,
  roleOf,
  scheduleRules,
  unzip,
} from '../helpers/packaged-service.js';
import {
  installDependencies,
  type PackedTarball,
  packRepository,
  type RunningCommand,
  runIn,
  startIn,
} from '../helpers/packed-package.js';
import { deleteQueueKeys, freePort, redisUrl, uniqueQueue } from '../helpers/redis.js';

const EXAMPLE = 'examples/orders-service';
/** What of the example is not copied: what an install or a package run leaves in it. */
const NOT_COPIED = new Set([
  'node_modules',
  'package-lock.json',
  '.serverless',
  '.serverless-celery',
  '.esbuild',
]);
const BROKER_URL = redisUrl(12);
const QUEUE = uniqueQueue();
/** The example's queue, which `dev` drains. */
const ORDERS_QUEUE = 'orders';
/** The URL the example's serverless.yml takes as `--param=brokerUrl=…`. */
const DEPLOYED_BROKER_URL = 'rediss://orders-cache.example.com:6379/0';
const PREFIX = 'orders-service-dev-';
const TASK_KEYS = ['task-orders-expire_unpaid', 'task-orders-send_confirmation'];
const CRON_KEY = 'cron-orders-expire_unpaid';
const PRODUCER_KEYS = ['producer-http', 'producer-invoke'];
/** Strings of each broker client, present in a bundle that carries it. */
const CLIENT_MARKS = {
  ioredis: 'ioredis:command',
  amqplib: 'https://amqp-node.github.io/amqplib/',
};
/**
 * A ceiling, not a goal: the task bundles weigh about 135 KB minified (zod 85, the library 27,
 * croner 10). A broker client (ioredis about 190 KB) or zod imported whole (`import { z } from
 * 'zod'`: about 450 KB) would cross it.
 */
const TASK_BUNDLE_CEILING_BYTES = 200 * 1024;

let workDir: string;
let project: string;
let tarball: PackedTarball;
let redis: Redis;
let worker: RunningCommand | undefined;
let dev: RunningCommand | undefined;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'sc-example-'));
  tarball = await packRepository(workDir);
  project = path.join(workDir, EXAMPLE);
  await cp(path.join(ROOT, EXAMPLE), project, {
    recursive: true,
    filter: (source) => !NOT_COPIED.has(path.basename(source)),
  });
  const manifest = JSON.parse(await readFile(path.join(project, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  const expected = `file:../../${path.basename(tarball.file)}`;
  if (manifest.dependencies['serverless-celery'] !== expected) {
    throw new Error(
      `${EXAMPLE}/package.json depends on serverless-celery ${manifest.dependencies['serverless-celery']}, ` +
        `but npm pack makes ${path.basename(tarball.file)}: make it "${expected}"`,
    );
  }
  await installDependencies(project);
  redis = new Redis(BROKER_URL, { maxRetriesPerRequest: 1 });
}, 300_000);

afterAll(async () => {
  await worker?.stop('SIGKILL');
  if (dev) await stopDev(dev);
  if (redis) {
    await deleteQueueKeys(redis, new RedisKeys(), [QUEUE, ORDERS_QUEUE]);
    await redis.quit();
  }
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('the example installed from the tarball', () => {
  it('resolves serverless-celery inside its own folder, the version packed, sharing its zod', async () => {
    // Act
    const installed = await realpath(path.join(project, 'node_modules/serverless-celery'));
    const { version } = JSON.parse(
      await readFile(path.join(installed, 'package.json'), 'utf8'),
    ) as { version: string };

    // Assess
    expect(path.relative(ROOT, project).startsWith(`..${path.sep}`)).toBe(true);
    expect(installed.startsWith(`${await realpath(project)}${path.sep}`)).toBe(true);
    expect(path.basename(tarball.file)).toBe(`serverless-celery-${version}.tgz`);
    // One zod for the app and the library: with two, TypeScript refuses the app's schemas.
    expect(existsSync(path.join(installed, 'node_modules/zod'))).toBe(false);
  });

  it('type-checks with its own TypeScript (npx tsc --noEmit)', async () => {
    // Act
    const result = await runIn(project, 'npx', ['--no-install', 'tsc', '--noEmit']);

    // Assess
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('refuses kwargs its schema refuses, naming each field, with exit 2', async () => {
    // Act
    const refused = await runIn(
      project,
      'npx',
      [
        '--no-install',
        'serverless-celery',
        'send',
        'orders.send_confirmation',
        '--kwargs',
        '{"order_id": "", "email": "not-an-address"}',
        '--app',
        './src/app.ts',
        '--queue',
        QUEUE,
      ],
      { BROKER_URL },
    );

    // Assess
    expect(refused.stderr).toContain('invalid arguments for task orders.send_confirmation');
    expect(refused.stderr).toContain('kwargs.order_id');
    expect(refused.stderr).toContain('kwargs.email');
    expect(refused.code).toBe(2);
    expect(await redis.llen(QUEUE)).toBe(0);
  });

  it('sends tasks with the installed CLI, and the CLI worker runs them until SIGTERM', async () => {
    // Act
    const sent = await sendConfirmation('A-1001', 'ann@example.com');
    const refused = await sendConfirmation('A-1002', 'bo@example.invalid');
    // The bin itself, not `npx`: a SIGTERM to npx kills npm's `sh -c` and leaves the worker
    // running, orphaned, so its exit code could not be read.
    worker = startIn(
      project,
      'node_modules/.bin/serverless-celery',
      ['worker', '--app', './src/app.ts', '--queues', QUEUE],
      { BROKER_URL },
    );
    const succeeded = await worker.waitForLine(new RegExp(`\\[${sent.id}\\]`));
    const deadLettered = await worker.waitForLine(new RegExp(`\\[${refused.id}\\]`));
    const exit = await worker.stop('SIGTERM');

    // Assess
    expect(succeeded).toMatch(
      new RegExp(`orders\\.send_confirmation\\[${sent.id}\\]\\s+retries 0/5\\s+succeeded`),
    );
    // retry.exclude lists the app's error class: the worker matches it across module instances.
    expect(deadLettered).toMatch(
      new RegExp(
        `orders\\.send_confirmation\\[${refused.id}\\]\\s+retries 0/5\\s+dead-lettered: excluded \\(InvalidRecipientError: `,
      ),
    );
    expect(worker.stdout()).toContain('mail to ann@example.com: Order A-1001 confirmed');
    expect(worker.stderr()).toContain(`worker: consuming ${QUEUE} on redis://127.0.0.1:6379/12`);
    expect(worker.stderr()).toContain('worker: SIGTERM: taking no more messages');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(await redis.llen(QUEUE)).toBe(0);
  });
});

describe('npm start: serverless-celery dev runs the functions in serverless-offline', () => {
  beforeAll(async () => {
    await deleteQueueKeys(redis, new RedisKeys(), [ORDERS_QUEUE]);
  });

  it('publishes over POST /tasks/{name}, runs the task in its function, and stops on SIGINT', {
    timeout: 120_000,
  }, async () => {
    // Prepare
    const [httpPort, lambdaPort] = [await freePort(), await freePort()];
    const { scripts } = JSON.parse(await readFile(path.join(project, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const [bin, ...args] = scripts.start?.split(' ') ?? [];

    // Act
    // What `npm start` runs, without npm between: Ctrl-C reaches a terminal's whole process
    // group, while a test's signal reaches one process (see the worker's test).
    dev = startIn(
      project,
      `node_modules/.bin/${bin}`,
      [...args, '--http-port', String(httpPort), '--lambda-port', String(lambdaPort)],
      { BROKER_URL },
    );
    await dev.waitForLine(/^Ready in /, { stream: 'stderr', timeoutMs: 90_000 });
    const url = `http://127.0.0.1:${httpPort}/tasks/orders.send_confirmation`;
    const accepted = await postJson(url, { kwargs: { order_id: 'B-1', email: 'cy@example.com' } });
    const refused = await postJson(url, { kwargs: { order_id: 'B-2', email: 'not-an-address' } });
    const id = (accepted.body as { id?: string }).id ?? '(no id)';
    const outcome = await dev.waitForLine(new RegExp(`\\[${id}\\]`));
    const exit = await stopDev(dev);

    // Assess
    expect(scripts.start).toBe('serverless-celery dev --app ./src/app.ts');
    expect(accepted.status).toBe(202);
    expect(outcome).toMatch(/retries 0\/5\s+succeeded/);
    expect(dev.stderr()).toContain('mail to cy@example.com: Order B-1 confirmed');
    expect(refused).toEqual({
      status: 400,
      body: expect.objectContaining({
        issues: [{ path: 'kwargs.email', message: 'Invalid email address' }],
      }),
    });
    expect(dev.stderr()).toContain('Stopped.');
    expect(exit).toEqual({ code: 0, signal: null });
  });
});

describe('the example packaged with its own osls', () => {
  let service: PackagedService;
  let output: string;

  beforeAll(async () => {
    const result = await runIn(
      project,
      'npx',
      ['--no-install', 'osls', 'package', `--param=brokerUrl=${DEPLOYED_BROKER_URL}`],
      { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', FORCE_COLOR: '0' },
    );
    output = result.stdout + result.stderr;
    if (result.code !== 0) throw new Error(`osls package failed (exit ${result.code}):\n${output}`);
    service = await readPackagedService(path.join(project, '.serverless'), PREFIX);
  }, 180_000);

  it('packages without a warning', () => {
    expect(output).not.toMatch(/warning/i);
    expect(output).toContain('Service packaged');
  });

  it('has a function per task, the cron trigger, the poller and the producers, named after the service', () => {
    const keys = [...functionsByKey(service).keys()].sort();

    expect(keys).toEqual([CRON_KEY, 'poller', ...PRODUCER_KEYS, ...TASK_KEYS].sort());
    for (const key of keys) {
      const { Properties } = functionOf(service, key);
      expect(Properties.FunctionName).toBe(`${PREFIX}${key}`);
      expect(Properties.Runtime, key).toBe('nodejs22.x');
      expect(Properties.Handler, key).toBe(`.serverless-celery/${key}.handler`);
    }
  });

  it('runs each task in its function, built from the installed package', async () => {
    for (const [key, task] of [
      ['task-orders-send_confirmation', 'orders.send_confirmation'],
      ['task-orders-expire_unpaid', 'orders.expire_unpaid'],
    ]) {
      const source = await readFile(path.join(project, `.serverless-celery/${key}.js`), 'utf8');

      expect(source).toContain(`createTaskHandler(registry, "${task}")`);
      expect(source).toContain('from "../src/app.ts"');
      expect(source).toContain(
        'from "../node_modules/serverless-celery/dist/lambda/task-handler.js"',
      );
    }
    // The task's timeLimit (20 s) and the plugin's 15 s to report the outcome.
    expect(functionOf(service, 'task-orders-send_confirmation').Properties.Timeout).toBe(35);
  });

  it('triggers the cron task every 15 minutes and the poller every minute, and nothing else', () => {
    expect(scheduleRules(service).sort()).toEqual([
      [CRON_KEY, 'cron(0/15 * * * ? *)', 'ENABLED'],
      ['poller', 'rate(1 minute)', 'ENABLED'],
    ]);
  });

  it('lets only the poller invoke functions, and only the task functions', () => {
    const invoking = iamStatements(service.template).filter(({ statement }) =>
      actionsOf(statement).some((action) => action === '*' || action.startsWith('lambda:')),
    );

    expect(invoking.map(({ holder }) => holder)).toEqual([roleOf(service, 'poller')]);
    expect(invoking[0]?.statement).toEqual({
      Effect: 'Allow',
      Action: 'lambda:InvokeFunction',
      Resource: TASK_KEYS.map((key) => functionArn(`${PREFIX}${key}`)),
    });
    for (const key of functionsByKey(service).keys()) {
      if (key !== 'poller') expect(roleOf(service, key), key).toBe('CeleryFunctionRole');
    }
  });

  it('gives every function the broker URL of --param brokerUrl and the function prefix', () => {
    for (const [key, { Properties }] of functionsByKey(service)) {
      const env = (Properties.Environment as { Variables: Record<string, string> }).Variables;
      expect(env, key).toMatchObject({ BROKER_URL: DEPLOYED_BROKER_URL, FUNCTION_PREFIX: PREFIX });
    }
  });

  it('publishes over HTTP at POST /tasks/{name}, signed requests only', () => {
    const routes = resourcesOfType(service.template, 'AWS::ApiGatewayV2::Route').map(
      ([, route]) => [route.Properties.RouteKey, route.Properties.AuthorizationType],
    );

    expect(routes).toEqual([['POST /tasks/{name}', 'AWS_IAM']]);
  });

  it('zips each function with its bundle alone; task bundles carry no broker client', async () => {
    for (const key of functionsByKey(service).keys()) {
      const zip = path.join(service.dir, `${key}.zip`);
      expect(existsSync(zip), zip).toBe(true);
      const entries = await unzip(zip);
      expect([...entries.keys()], key).toEqual([`.serverless-celery/${key}.mjs`]);
      const bundle = entries.get(`.serverless-celery/${key}.mjs`)?.toString('utf8') ?? '';

      expect(bundle, key).not.toContain(CLIENT_MARKS.amqplib);
      if (TASK_KEYS.includes(key)) {
        expect(bundle, key).not.toContain(CLIENT_MARKS.ioredis);
        expect(bundle.length, key).toBeLessThan(TASK_BUNDLE_CEILING_BYTES);
      } else {
        // The poller, the producers and the cron trigger talk to Redis.
        expect(bundle, key).toContain(CLIENT_MARKS.ioredis);
      }
    }
  });
});

/** `npx serverless-celery send orders.send_confirmation` to the test's queue; the id it printed. */
async function sendConfirmation(orderId: string, email: string): Promise<{ id: string }> {
  const sent = await runIn(
    project,
    'npx',
    [
      '--no-install',
      'serverless-celery',
      'send',
      'orders.send_confirmation',
      '--kwargs',
      JSON.stringify({ order_id: orderId, email }),
      '--app',
      './src/app.ts',
      '--queue',
      QUEUE,
    ],
    { BROKER_URL },
  );
  expect(sent.code, sent.stderr).toBe(0);
  const id = sent.stdout.trim();
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  return { id };
}

/** POSTs `body` as JSON; the status and the parsed answer. */
async function postJson(url: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/**
 * Stops `serverless-celery dev` as Ctrl-C does (SIGINT: its poller settles what it holds, then it
 * stops serverless-offline, which runs in a process group of its own). If it has not ended
 * within 30 s, SIGKILL to it and to serverless-offline's group, so no server outlives the test.
 */
async function stopDev(
  running: RunningCommand,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const offline = Number(/process group (\d+)/.exec(running.stderr())?.[1]);
  const timer = setTimeout(() => {
    running.child.kill('SIGKILL');
    if (offline > 0) signalGroup(offline, 'SIGKILL');
  }, 30_000);
  try {
    return await running.stop('SIGINT');
  } finally {
    clearTimeout(timer);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already: nothing to stop.
  }
}
