/**
 * `npm start` end to end, once per broker (`BROKERS=redis,rabbitmq`): the real command as a child
 * process, real serverless-offline running every function, and the local poller (Redis) or the
 * local Amazon MQ event source (RabbitMQ) invoking them through serverless-offline's Lambda
 * endpoint. Requests go to http://localhost:3000 as a person's would. Then
 * `serverless-celery dev` itself, on ports and a stage of its own, for the demo's service with
 * results: `resultBackend` set through its param and `GET /results/{id}` opted in.
 *
 * Isolation: the broker is database 5 of the local Redis, or a throw-away vhost; the event store
 * and cron lock are database 5 either way, and so is the result backend of `dev`. Only keys this
 * file creates are deleted (the `events` queue of database 5, the events it posted, the results
 * of the tasks it published, the cron tick keys of database 5). The `npm start`
 * runs use ports 3000 and 3002, one after the other; afterAll kills whatever is left of each run.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { RedisResultBackend } from '../../src/brokers/redis/redis-result-backend.js';
import { isListening } from '../../src/cli/local-offline.js';
import { EventStore } from '../../src/demo/event-store.js';
import { BROKERS } from '../helpers/brokers.js';
import { sendCeleryTasks } from '../helpers/celery.js';
import { BIN } from '../helpers/cli.js';
import { eventually, getEvent, mapLimit, NpmStart, postJson, ROOT } from '../helpers/npm-start.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { deleteKeysWithPrefix, deleteQueueKeys, freePort, redisUrl } from '../helpers/redis.js';

const DB = 5;
const STORE_URL = redisUrl(DB);
const QUEUE = 'events';
const EVENT_PREFIX = 'demo:event:';
/** The cron task fires every minute: from boot, its first run is at most a minute away. */
const CRON_WAIT_MS = 75_000;

const run = promisify(execFile);

/** `npx serverless-celery …` (the CLI of this repository). */
async function cli(args: string[]): Promise<string> {
  const { stdout } = await run('npx', ['--no-install', 'serverless-celery', ...args], {
    cwd: ROOT,
    timeout: 60_000,
  });
  return stdout;
}

/** The live outcome lines of task id `id`: `12:00:01.234  task[id]  retries 0/5  …`. */
function outcomeLines(app: NpmStart, id: string): string[] {
  return app.lines(`[${id}]`).filter((line) => /^\d\d:\d\d:\d\d\.\d{3} {2}/.test(line));
}

/**
 * The outcome lines of `id` once it has succeeded: the task function saves the event before the
 * poller hears back from it and prints the line.
 */
async function linesOnceSucceeded(app: NpmStart, id: string): Promise<string[]> {
  await app.waitFor(new RegExp(`\\[${id}\\] {2}retries \\d+/\\d+ {2}succeeded`), 10_000);
  return outcomeLines(app, id);
}

describe('npm start with a broker nobody runs', () => {
  it.each([
    ['redis', (port: number) => `redis://127.0.0.1:${port}/0`, 'redis-server --daemonize yes'],
    [
      'rabbitmq',
      (port: number) => `amqp://guest:guest@127.0.0.1:${port}/`,
      'rabbitmq-server -detached',
    ],
  ])(
    'says so in one line with the command that starts %s, and exits non-zero',
    async (_kind, url, command) => {
      const app = new NpmStart({ BROKER_URL: url(await freePort()), STORE_URL });
      try {
        const exit = await app.exited;
        const ours = app
          .output()
          .split('\n')
          .filter((line) => line.startsWith('error: broker'));

        expect(exit.code).toBe(69);
        expect(ours).toHaveLength(1);
        expect(ours[0]).toContain('connection refused');
        expect(ours[0]).toContain(`Start one: ${command}`);
        expect(app.output()).not.toMatch(/^\s+at /m);
        expect(app.output()).not.toContain('Starting serverless-offline');
      } finally {
        await app.kill();
      }
    },
    30_000,
  );
});

describe.each(BROKERS)('npm start on %s', (kind) => {
  const admin = new Redis(STORE_URL);
  const store = new EventStore(STORE_URL);
  const eventIds: string[] = [];
  let vhost: TestVhost | undefined;
  let brokerUrl: string;
  let app: NpmStart;

  const postEvent = async (payload: unknown) => {
    const { status, body } = await postJson('/events', payload);
    expect(status).toBe(202);
    eventIds.push(body.id as string);
    return body as { id: string; task_id: string };
  };
  const saved = (id: string, timeoutMs = 20_000) =>
    eventually(
      async () => {
        const event = await getEvent(id);
        return event?.status === 'saved' ? event : undefined;
      },
      timeoutMs,
      `event ${id} to be saved`,
    );

  beforeAll(async () => {
    if (kind === 'rabbitmq') vhost = await createTestVhost();
    else await deleteQueueKeys(admin, new RedisKeys(), [QUEUE]);
    brokerUrl = vhost?.url ?? STORE_URL;
    app = new NpmStart({ BROKER_URL: brokerUrl, STORE_URL });
    await app.waitFor(/^Ready in [\d.]+ s/m, 120_000);
    console.info(`${kind}: npm start ready after ${(app.elapsedMs / 1000).toFixed(1)} s`);
  }, 150_000);

  afterAll(async () => {
    await app?.kill();
    if (kind === 'redis') await deleteQueueKeys(admin, new RedisKeys(), [QUEUE]);
    if (eventIds.length > 0) await admin.del(...eventIds.map((id) => `${EVENT_PREFIX}${id}`));
    await deleteKeysWithPrefix(admin, '_sc.cron.');
    await vhost?.remove();
    await store.close();
    await admin.quit();
  }, 60_000);

  it('prints where to send requests, and serverless-offline runs no poller of its own', () => {
    const output = app.output();

    expect(output).toContain('POST http://localhost:3000/events');
    expect(output).toContain('GET  http://localhost:3000/events/{id}');
    expect(output).toContain('POST http://localhost:3000/tasks/{name}');
    expect(output).toContain('through http://127.0.0.1:3002');
    // Where it reads, by host and db or vhost, never with a password.
    expect(output).toContain(
      kind === 'redis'
        ? 'the local poller drains events on Redis 127.0.0.1:6379 db 5'
        : `the local Amazon MQ event source feeds events on RabbitMQ 127.0.0.1:5672 vhost ${vhost?.name}`,
    );
    // The scheduled drain would race the local poller and invoke the real AWS endpoint.
    expect(output).not.toMatch(/Scheduling \[poller\] cron: \[/);
  });

  it('saves all of 100 events posted to POST /events', async () => {
    const started = Date.now();
    const posted = await mapLimit(
      Array.from({ length: 100 }, (_, index) => index),
      10,
      (index) => postEvent({ n: index }),
    );
    const pending = new Set(posted.map(({ id }) => id));
    await eventually(
      async () => {
        await mapLimit([...pending], 10, async (id) => {
          if ((await getEvent(id))?.status === 'saved') pending.delete(id);
        });
        return pending.size === 0 ? true : undefined;
      },
      60_000,
      'all 100 events to be saved',
    );
    console.info(`${kind}: 100 events posted and saved in ${Date.now() - started} ms`);

    for (const { task_id } of posted) {
      expect((await linesOnceSucceeded(app, task_id)).join('\n')).toMatch(
        /ingest\.save_event\[\S+\] {2}retries 0\/\d+ {2}succeeded in \d+ ms/,
      );
    }
  }, 90_000);

  it('retries a transient store error after its delays, then saves the event', async () => {
    const { id, task_id } = await postEvent({ simulate: 'transient', times: 2 });

    const event = await saved(id);
    const lines = await linesOnceSucceeded(app, task_id);

    expect(event.attempts).toBe(3);
    expect(lines).toHaveLength(3);
    // The same line on both brokers: which message, its retries, the delay and the error.
    const retry = /retry in \d+(\.\d)? m?s after \d+ ms \(StoreUnavailableError: store busy/;
    expect(lines[0]).toMatch(new RegExp(`\\[${task_id}\\] {2}retries 0/\\d+ {2}${retry.source}`));
    expect(lines[1]).toMatch(new RegExp(`\\[${task_id}\\] {2}retries 1/\\d+ {2}${retry.source}`));
    expect(lines[2]).toMatch(/ {2}retries 2\/\d+ {2}succeeded in \d+ ms$/);
  }, 30_000);

  it('dead-letters an excluded error, and a replay of the fixed event saves it', async () => {
    const { id, task_id } = await postEvent({ simulate: 'bug' });
    const [line] = await app.waitFor(
      new RegExp(`\\[${task_id}\\] {2}retries 0/\\d+ {2}dead.*`),
      20_000,
    );
    const shown = JSON.parse(
      await cli(['dlq', 'show', task_id, '--queue', QUEUE, '--broker', brokerUrl, '--json']),
    ) as { broker: Record<string, unknown>; entries: { reason: string; errorType: string }[] };

    expect(shown.entries[0]).toMatchObject({ reason: 'excluded', errorType: 'TypeError' });
    expect(shown.broker).toMatchObject(
      kind === 'redis' ? { kind, db: DB } : { kind, vhost: vhost?.name },
    );
    expect(line).toContain('dead-lettered: excluded (TypeError: cannot read the payload');

    // The bug is fixed (here: the payload), then the dead letter is replayed.
    await admin.hset(`${EVENT_PREFIX}${id}`, 'payload', JSON.stringify({ fixed: true }));
    const replayed = await cli([
      'dlq',
      'replay',
      '--queue',
      QUEUE,
      '--task',
      'ingest.save_event',
      '--broker',
      brokerUrl,
    ]);
    const event = await saved(id);

    expect(replayed).toContain(`replayed 1 dead letter(s) to ${QUEUE}`);
    expect(event.attempts).toBe(2);
    expect((await linesOnceSucceeded(app, task_id)).at(-1)).toMatch(/retries 0\/\d+ {2}succeeded/);
  }, 60_000);

  it('runs a task sent by Python Celery (send_task) in the task function of serverless-offline', async () => {
    const id = await store.create({ from: 'python' });
    eventIds.push(id);
    const invokesBefore = app.lines('(λ: task-ingest-save_event) RequestId').length;

    const [sent] = await sendCeleryTasks({
      broker: brokerUrl,
      queue: QUEUE,
      task: 'ingest.save_event',
      kwargs: { event_id: id },
    });
    const event = await saved(id);

    expect(event.attempts).toBe(1);
    expect((await linesOnceSucceeded(app, sent?.id ?? '?')).join('\n')).toMatch(
      /retries 0\/\d+ {2}succeeded/,
    );
    expect(app.lines('(λ: task-ingest-save_event) RequestId').length).toBeGreaterThan(
      invokesBefore,
    );
  }, 60_000);

  it(
    'fires ingest.cleanup on its schedule and runs it in its task function',
    async () => {
      const fired = await app.waitFor(
        /^\d\d:\d\d:\d\d\.\d{3} {2}ingest\.cleanup\[\S+\] {2}retries 0\/\d+ {2}(.+)$/m,
        Math.max(5_000, CRON_WAIT_MS - app.elapsedMs),
      );

      expect(fired[1]).toMatch(/^succeeded/);
      expect(app.output()).toContain(
        '[offline] Successfully invoked scheduled function: [cron-ingest-cleanup]',
      );
    },
    CRON_WAIT_MS + 20_000,
  );

  it('stops the poller and serverless-offline on Ctrl-C and exits 0', async () => {
    app.interrupt();
    const exit = await app.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(app.output()).toMatch(/Stopping: the poller settles what it holds[\s\S]*\nStopped\.\n/);
    expect(await isListening('127.0.0.1', 3000)).toBe(false);
    expect(await isListening('127.0.0.1', 3002)).toBe(false);
  }, 30_000);
});

describe.each(BROKERS.slice(0, 1))(
  'serverless-celery dev on %s, on ports and a stage of its own',
  (kind) => {
    const admin = new Redis(STORE_URL);
    const eventIds: string[] = [];
    const taskIds: string[] = [];
    let vhost: TestVhost | undefined;
    let ports: { http: number; lambda: number };
    let dev: NpmStart;

    beforeAll(async () => {
      if (kind === 'rabbitmq') vhost = await createTestVhost();
      else await deleteQueueKeys(admin, new RedisKeys(), [QUEUE]);
      ports = { http: await freePort(), lambda: await freePort() };
      // RESULT_BACKEND emptied: the result backend is the one serverless.yml gets (its param).
      dev = new NpmStart({ BROKER_URL: vhost?.url ?? STORE_URL, RESULT_BACKEND: '' }, [
        process.execPath,
        BIN,
        'dev',
        '--app',
        './src/demo/app.ts',
        '--http-port',
        String(ports.http),
        '--lambda-port',
        String(ports.lambda),
        '--stage',
        'devtest',
        '--param',
        `storeUrl=${STORE_URL}`,
        '--param',
        `resultBackend=${STORE_URL}`,
        '--param',
        'resultsRoute=true',
      ]);
      await dev.waitFor(/^Ready in [\d.]+ s/m, 120_000);
    }, 150_000);

    afterAll(async () => {
      await dev?.kill();
      if (taskIds.length > 0) await admin.del(...taskIds.map((id) => `celery-task-meta-${id}`));
      if (kind === 'redis') await deleteQueueKeys(admin, new RedisKeys(), [QUEUE]);
      if (eventIds.length > 0) await admin.del(...eventIds.map((id) => `${EVENT_PREFIX}${id}`));
      await deleteKeysWithPrefix(admin, '_sc.cron.');
      await vhost?.remove();
      await admin.quit();
    }, 60_000);

    it('serves the HTTP API and invokes the functions of that stage on the ports asked for', async () => {
      // Prepare
      const base = `http://localhost:${ports.http}`;

      // Act
      const { status, body } = await postJson('/events', { simulate: 'transient', times: 1 }, base);
      eventIds.push(body.id as string);
      const event = await eventually(
        async () => {
          const state = await getEvent(body.id as string, base);
          return state?.status === 'saved' ? state : undefined;
        },
        20_000,
        'the event to be saved',
      );

      // Assess
      expect(status).toBe(202);
      expect(event.attempts).toBe(2);
      expect(dev.output()).toContain(`POST http://localhost:${ports.http}/events`);
      expect(dev.output()).toContain(
        `invokes serverless-celery-devtest-task-* through http://127.0.0.1:${ports.lambda}`,
      );
      const lines = await linesOnceSucceeded(dev, body.task_id as string);
      expect(lines[0]).toMatch(/retries 0\/\d+ {2}retry in .* \(StoreUnavailableError: store busy/);
      expect(lines[1]).toMatch(/retries 1\/\d+ {2}succeeded in \d+ ms$/);
      expect(await isListening('127.0.0.1', 3000)).toBe(false);
    }, 40_000);

    it("stores results where serverless.yml's resultBackend says, and GET /results/{id} reads them", async () => {
      // Prepare
      const base = `http://localhost:${ports.http}`;
      const backend = new RedisResultBackend(STORE_URL);

      try {
        // Act
        const { status, body } = await postJson('/tasks/ingest.cleanup', {}, base);
        const id = body.id as string;
        taskIds.push(id);
        await linesOnceSucceeded(dev, id);
        const meta = await eventually(
          async () => {
            const stored = await backend.getMeta(id);
            return stored.status === 'SUCCESS' ? stored : undefined;
          },
          10_000,
          'the result to be stored',
        );
        const read = await fetch(`${base}/results/${id}`);

        // Assess
        expect(status).toBe(202);
        expect(dev.output()).toContain(
          `through http://127.0.0.1:${ports.lambda}, and stores their results in Redis 127.0.0.1:6379/${DB}.`,
        );
        expect(dev.output()).toContain(`GET  http://localhost:${ports.http}/results/{id}`);
        expect(meta).toMatchObject({
          task_id: id,
          status: 'SUCCESS',
          result: { deleted: expect.any(Number) },
        });
        expect(read.status).toBe(200);
        expect(await read.json()).toEqual({ id, state: 'SUCCESS', result: meta.result });
      } finally {
        await backend.close();
      }
    }, 30_000);

    it('stops on Ctrl-C, exits 0 and leaves its ports free', async () => {
      // Act
      dev.interrupt();
      const exit = await dev.exited;

      // Assess
      expect(exit).toEqual({ code: 0, signal: null });
      expect(dev.output()).toMatch(/\nStopped\.\n/);
      expect(await isListening('127.0.0.1', ports.http)).toBe(false);
      expect(await isListening('127.0.0.1', ports.lambda)).toBe(false);
    }, 30_000);
  },
);
