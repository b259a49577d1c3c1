/**
 * At-least-once for workflows, on Redis and RabbitMQ (`BROKERS`): a consumer process
 * (`test/fixtures-app/continuation-crash-consumer.ts`) runs a task whose message carries a
 * `link` and a `chain`, publishes the continuations, and is SIGKILLed before it settles the
 * message. The message comes back (Redis: after the visibility timeout; RabbitMQ: at once), a
 * second consumer runs it again and publishes the continuations again, **with the same ids**:
 * repeated, never lost, and a waiter on those ids sees one task.
 *
 * Redis database 12 with unique queues (only their keys are removed); RabbitMQ in a throw-away
 * vhost per file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { deterministicId } from '../../src/core/canvas.js';
import { createTaskMessage, EMPTY_EMBED } from '../../src/core/message.js';
import { createRegistry } from '../../src/core/registry.js';
import { BROKERS } from '../helpers/brokers.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { deleteQueueKeys, redisUrl } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

const CONSUMER = path.resolve(
  import.meta.dirname,
  '../fixtures-app/continuation-crash-consumer.ts',
);
const REDIS_DB = 12;

interface Entry {
  readonly pid: number;
  readonly event: 'run' | 'published' | 'killed';
  readonly id?: string;
  readonly ids?: string[];
}

describe.each(BROKERS)('a crash between publishing continuations and settling, on %s', (kind) => {
  let url: string;
  let vhost: TestVhost | undefined;
  let admin: Redis | undefined;
  let queue: string;
  let next: string;
  let dir: string;
  let broker: Broker;
  let children: ChildProcess[];

  beforeAll(async () => {
    if (kind === 'rabbitmq') {
      vhost = await createTestVhost('crash');
      url = vhost.url;
    } else {
      url = redisUrl(REDIS_DB);
      admin = new Redis(url, { maxRetriesPerRequest: 1 });
    }
  });

  afterAll(async () => {
    await vhost?.remove();
    await admin?.quit();
  });

  beforeEach(() => {
    queue = `sc-cont-crash-${randomUUID()}`;
    next = `sc-cont-next-${randomUUID()}`;
    dir = mkdtempSync(path.join(tmpdir(), 'sc-cont-crash-'));
    children = [];
    const { queues } = createRegistry({ tasks: [], queues: [{ name: queue }, { name: next }] });
    broker = createBroker({ kind, url }, { queues, logger: { warn: () => undefined } });
  });

  afterEach(async () => {
    await Promise.all(children.map((child) => stop(child, 'SIGKILL')));
    await broker.close();
    if (admin) await deleteQueueKeys(admin, new RedisKeys(), [queue, next]);
    rmSync(dir, { recursive: true, force: true });
  });

  const recordFile = () => path.join(dir, 'records.jsonl');
  const entries = (): Entry[] =>
    existsSync(recordFile())
      ? readFileSync(recordFile(), 'utf8')
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as Entry)
      : [];

  async function startConsumer(killAfterPublish: boolean): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', CONSUMER], {
      env: {
        ...process.env,
        SC_BROKER_URL: url,
        SC_QUEUE: queue,
        SC_RECORD_FILE: recordFile(),
        SC_KILL_AFTER_PUBLISH: killAfterPublish ? '1' : '0',
        SC_VISIBILITY_TIMEOUT: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    await until(
      () => output.includes('ready ') || exited(child),
      20_000,
      () => output,
    );
    if (exited(child)) expect.fail(`consumer exited before it was ready:\n${output}`);
    return child;
  }

  it('republishes the same continuation ids after the restart, and loses none', async () => {
    // Prepare: one message whose success sends a callback (id derived here) and a chain step
    // (id frozen by the sender), both to a queue nobody consumes.
    const sig = (task: string, options: Record<string, string>) => ({
      task,
      args: [],
      kwargs: {},
      options: { queue: next, ...options },
      subtask_type: null,
      immutable: false,
    });
    const chainId = randomUUID();
    const message = createTaskMessage({
      task: 'crash.step',
      queue,
      embed: {
        ...EMPTY_EMBED,
        callbacks: [sig('py.callback', {})],
        chain: [sig('py.next_step', { task_id: chainId })],
      },
    });
    const callbackId = deterministicId(`${message.id}/callbacks/0`);
    await broker.publish([message]);

    // Act 1: the first consumer publishes the continuations, then dies before settling.
    const first = await startConsumer(true);
    await until(
      () => exited(first),
      20_000,
      () => JSON.stringify(entries()),
    );

    // Assess 1: the continuations are on the broker; the message is not settled.
    expect(first.signalCode).toBe('SIGKILL');
    expect(entries().map((entry) => entry.event)).toEqual(['run', 'published', 'killed']);
    expect((await broker.stats(next)).ready).toBe(2);
    // Redis: still in kombu's unacked hash; RabbitMQ: back to ready once the broker sees the
    // connection gone.
    await until(
      async () => {
        const held = await broker.stats(queue);
        return held.ready + held.unacked === 1;
      },
      5_000,
      () => 'the message held or back in its queue',
    );

    // Act 2: a second consumer gets the message back, runs it and publishes again.
    const second = await startConsumer(false);
    await until(
      () => entries().filter((entry) => entry.event === 'run').length >= 2,
      30_000,
      () => JSON.stringify(entries()),
    );
    await until(
      async () => (await broker.stats(queue)).unacked === 0,
      10_000,
      () => 'settle',
    );
    await stop(second, 'SIGTERM');

    // Assess 2: two runs, the same ids published twice, the message settled.
    const published = entries().filter((entry) => entry.event === 'published');
    expect(published.map((entry) => entry.ids)).toEqual([
      [callbackId, chainId],
      [callbackId, chainId],
    ]);
    const ids: string[] = [];
    await until(
      async () => {
        const deliveries = await broker.receive(next, { max: 10, waitMs: 200 });
        ids.push(...deliveries.map((d) => (d.result.ok ? d.result.message.id : '?')));
        return ids.length >= 4;
      },
      5_000,
      () => `received ${ids.join(', ')}`,
    );
    expect(ids.sort()).toEqual([callbackId, callbackId, chainId, chainId].sort());
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, unacked: 0, deadLettered: 0 });
  });
});

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (exited(child)) return;
  const done = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await done;
}
