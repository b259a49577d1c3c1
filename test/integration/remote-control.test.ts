/**
 * Celery's remote control answered by our long-lived worker: real `celery inspect` (5.2.6, and
 * 5.6.3 when `CELERY56_PY` names it) on both brokers lists it with `ping`, sees its running task
 * with `active`, its tasks with `registered`, gets our error for a command we do not answer, and
 * hears nothing from it when addressed to another node.
 */
import { execFile } from 'node:child_process';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker } from '../../src/brokers/create-broker.js';
import { createControlMailbox } from '../../src/brokers/create-control-mailbox.js';
import { main } from '../../src/cli/main.js';
import { workerNodeName } from '../../src/core/event-dispatcher.js';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { createCliApp } from '../fixtures-app/cli-app.js';
import { startTestBroker, type TestBroker } from '../helpers/brokers.js';
import { PYTHON } from '../helpers/celery.js';
import { testContext } from '../helpers/cli.js';
import { fakeBroker } from '../helpers/lambda.js';
import { startLocalWorker } from '../helpers/worker.js';

const CELERY_VERSIONS = [
  { version: '5.2.6', python: PYTHON },
  ...(process.env.CELERY56_PY ? [{ version: '5.6.3', python: process.env.CELERY56_PY }] : []),
];
const HOSTNAME = workerNodeName();

describe.each(['redis', 'rabbitmq'] as const)('remote control on %s', (kind) => {
  let testBroker: TestBroker;
  let stopWorker: () => Promise<void>;
  let release: () => void = () => undefined;
  let started: () => void = () => undefined;
  const running = new Promise<void>((resolve) => {
    started = resolve;
  });
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    testBroker = await startTestBroker(kind, 'remote-control');
    const queue = 'rc.work';
    const slow = defineTask({ name: 'rc.slow', queue, maxRetries: 0 }, async () => {
      started();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    const quick = defineTask({ name: 'rc.quick', queue, maxRetries: 0 }, () => undefined);
    const registry = createRegistry({ tasks: [slow, quick], queues: [{ name: queue }] });
    const broker = createBroker(testBroker.url, { queues: registry.queues });
    const mailbox = createControlMailbox(testBroker.url);
    cleanup.push(
      () => mailbox.close(),
      () => broker.close(),
    );
    stopWorker = startLocalWorker(broker, registry, { queues: [queue], remoteControl: mailbox });
    await broker.publish([slow.createMessage({ args: ['order-1'], kwargs: { attempt: 2 } })]);
    await running;
  }, 60_000);

  afterAll(async () => {
    release();
    await stopWorker?.();
    for (const step of cleanup) await step();
    await testBroker?.stop();
  });

  const inspect = (python: string, ...args: string[]) =>
    celeryInspect(testBroker.url, python, args);
  describe.each(CELERY_VERSIONS)('celery $version', ({ python }) => {
    it('pings our worker, lists its running task and its tasks', async () => {
      const [ping, active, registered] = await Promise.all([
        inspect(python, 'ping'),
        inspect(python, 'active'),
        inspect(python, 'registered'),
      ]);

      expect(ping).toEqual({ code: 0, replies: { [HOSTNAME]: { ok: 'pong' } } });
      expect(active.replies?.[HOSTNAME]).toEqual([
        expect.objectContaining({
          name: 'rc.slow',
          args: ['order-1'],
          kwargs: { attempt: 2 },
          hostname: HOSTNAME,
          acknowledged: false,
          worker_pid: process.pid,
          delivery_info: expect.objectContaining({ routing_key: 'rc.work' }),
        }),
      ]);
      expect(registered).toEqual({ code: 0, replies: { [HOSTNAME]: ['rc.quick', 'rc.slow'] } });
    }, 60_000);

    it('answers a command it does not carry out with an error, and only its own node', async () => {
      const [stats, elsewhere, mine] = await Promise.all([
        inspect(python, 'stats'),
        inspect(python, 'ping', '--destination', 'other@nowhere'),
        inspect(python, 'ping', '--destination', `other@nowhere,${HOSTNAME}`),
      ]);

      expect(stats.replies?.[HOSTNAME]).toEqual({ error: expect.stringContaining('stats') });
      expect(elsewhere.code).not.toBe(0);
      expect(elsewhere.output).toContain('No nodes replied');
      expect(mine.replies).toEqual({ [HOSTNAME]: { ok: 'pong' } });
    }, 60_000);
  });
});

describe('worker --remote-control', () => {
  /** `-n probe@%n`: Celery's expansion of the host name's first label. */
  const PROBE = `probe@${hostname().split('.')[0]}`;

  it('answers celery inspect ping as its -n node name until it stops', async () => {
    // Prepare: tasks from a fake broker (none); the mailbox on the --broker URL.
    const testBroker = await startTestBroker('redis', 'remote-control-cli');
    const cli = createCliApp({ queue: 'jobs', prefix: 'rc-cli' });
    const context = testContext({ registry: cli.registry, broker: fakeBroker() });

    try {
      // Act
      const worker = main(
        ['worker', '--remote-control', '-n', 'probe@%n', '--broker', testBroker.url],
        context,
      );
      let ping = await celeryInspect(testBroker.url, PYTHON, ['ping', '-d', PROBE]);
      for (let attempt = 0; ping.code !== 0 && attempt < 10; attempt++) {
        ping = await celeryInspect(testBroker.url, PYTHON, ['ping', '-d', PROBE]);
      }
      context.shutdown('SIGTERM');
      const code = await worker;
      const after = await celeryInspect(testBroker.url, PYTHON, ['ping']);

      // Assess
      expect(ping).toEqual({ code: 0, replies: { [PROBE]: { ok: 'pong' } } });
      expect(code).toBe(0);
      expect(after.output).toContain('No nodes replied');
    } finally {
      await testBroker.stop();
    }
  }, 60_000);
});

/** `celery inspect <args> --json` against `broker`: exit code and parsed output, or its text. */
async function celeryInspect(broker: string, python: string, args: readonly string[]) {
  const command = ['-m', 'celery', '-b', broker, 'inspect', ...args, '--json', '--timeout', '1.5'];
  try {
    const { stdout } = await promisify(execFile)(python, command, { timeout: 30_000 });
    return { code: 0, replies: JSON.parse(stdout) as Record<string, unknown> };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: `${failed.stdout}${failed.stderr}` };
  }
}
