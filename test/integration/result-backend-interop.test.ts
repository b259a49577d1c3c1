/**
 * The Redis result backend across the language boundary, against real Python Celery 5.2.6:
 * Python's `AsyncResult(id).get()` on results our worker stored (success, failure with its
 * exception type, retry state), our `AsyncResult.get()` on a Python task's result, a chain
 * Python → ours → Python whose `.get()` in Python returns the right value, and chords whose header
 * runs on both workers and whose body runs on either.
 *
 * Both brokers (`BROKERS`): a throw-away redis-server per file is the backend (and the Redis
 * broker), so nothing shared is touched; RabbitMQ in a throw-away vhost.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { RedisResultBackend } from '../../src/brokers/redis/redis-result-backend.js';
import { runResult } from '../../src/cli/commands/result.js';
import { routeFor } from '../../src/core/canvas.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { ResultTimeoutError, TaskFailedError } from '../../src/core/result-backend.js';
import { defineTask } from '../../src/core/task.js';
import { createPublisher } from '../../src/producer/publisher.js';
import { runLocalWorker } from '../../src/worker/local-worker.js';
import { BROKERS } from '../helpers/brokers.js';
import {
  type CeleryWorker,
  PYTHON,
  startCeleryWorker,
  stopCeleryWorkers,
} from '../helpers/celery.js';
import { testContext } from '../helpers/cli.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.js';

class StepFailed extends Error {
  override name = 'StepFailed';
}
class Busy extends Error {
  override name = 'Busy';
}

function ourApp(queue: string): Registry {
  const add = defineTask({ name: 'ts.add', queue }, (_kwargs, ctx) => {
    const [x, y] = ctx.args as [number, number];
    return x + y;
  });
  const sum = defineTask({ name: 'ts.sum', queue }, (_kwargs, ctx) =>
    (ctx.args[0] as number[]).reduce((a, b) => a + b, 0),
  );
  const fail = defineTask({ name: 'ts.fail', queue, retry: { exclude: [StepFailed] } }, () => {
    throw new StepFailed('on purpose');
  });
  const busy = defineTask(
    { name: 'ts.busy', queue, retry: { on: [Busy] }, defaultRetryDelay: 600 },
    () => {
      throw new Busy('try later');
    },
  );
  return createRegistry({ tasks: [add, sum, fail, busy], queues: [{ name: queue }] });
}

/** Python's side: sends a call or a canvas by name, then `.get()`s or reads the state. */
const PYTHON_CLIENT = `
import json, sys, time
from celery import Celery, chain, chord
spec = json.loads(sys.argv[1])
app = Celery('rb-client', broker=spec['broker'], backend=spec['url'])
app.conf.update(task_serializer='json', accept_content=['json'], result_serializer='json')
def sig(d):
    return app.signature(d['task'], args=d.get('args', []), queue=d['queue'])
kind = spec['kind']
if kind == 'state':
    r = app.AsyncResult(spec['id'])
    deadline = time.time() + 10
    while r.state != spec['want'] and time.time() < deadline:
        time.sleep(0.1)
    print(json.dumps({'state': r.state, 'result': repr(r.result)}))
    sys.exit(0)
if kind == 'call':
    r = sig(spec['sig']).apply_async()
elif kind == 'chain':
    r = chain(*[sig(s) for s in spec['steps']]).apply_async()
else:
    r = chord([sig(s) for s in spec['header']], sig(spec['body'])).apply_async()
try:
    print(json.dumps({'id': r.id, 'value': r.get(timeout=15)}))
except Exception as e:
    print(json.dumps({'id': r.id, 'error': type(e).__name__, 'message': str(e)}))
`;

async function python(spec: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    ['-c', PYTHON_CLIENT, JSON.stringify(spec)],
    {
      timeout: 40_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
}

describe.each(BROKERS)('the Redis result backend with real Celery 5.2.6, broker %s', (kind) => {
  let redis: ThrowawayRedis;
  let vhost: TestVhost | undefined;
  let url: string;
  let brokerUrl: string;
  let tsQueue: string;
  let pyQueue: string;
  let broker: Broker;
  let backend: RedisResultBackend;
  let registry: Registry;
  let pyWorker: CeleryWorker;
  let stopOurs: () => Promise<void>;

  beforeAll(async () => {
    redis = await startThrowawayRedis();
    url = redis.url;
    if (kind === 'rabbitmq') vhost = await createTestVhost('rb');
    brokerUrl = vhost?.url ?? url;
  });

  afterAll(async () => {
    await vhost?.remove();
    await redis.stop();
  });

  beforeEach(async () => {
    tsQueue = `sc-rb-ts-${randomUUID()}`;
    pyQueue = `sc-rb-py-${randomUUID()}`;
    registry = ourApp(tsQueue);
    broker = createBroker(brokerUrl, {
      queues: registry.queues,
      logger: { warn: () => undefined },
    });
    backend = new RedisResultBackend(url, { route: routeFor(registry) });
    pyWorker = await startCeleryWorker({
      broker: brokerUrl,
      queue: pyQueue,
      include: ['workflow_app'],
      resultBackend: url,
    });
    const controller = new AbortController();
    const running = runLocalWorker(broker, registry, {
      queues: [tsQueue],
      waitMs: 200,
      signal: controller.signal,
      resultBackend: backend,
    });
    stopOurs = async () => {
      controller.abort();
      await running;
    };
  });

  afterEach(async () => {
    await stopOurs();
    await stopCeleryWorkers();
    await broker.close();
    await backend.close();
  });

  const ts = (task: string, args: unknown[] = []) => ({ task, queue: tsQueue, args });
  const py = (task: string, args: unknown[] = []) => ({ task, queue: pyQueue, args });

  it("Python's get() returns our task's value", async () => {
    const answer = await python({
      broker: brokerUrl,
      url,
      kind: 'call',
      sig: ts('ts.add', [1, 2]),
    });
    expect(answer.value).toBe(3);
  });

  it("Python's get() raises our failure with its exception type", async () => {
    const answer = await python({ broker: brokerUrl, url, kind: 'call', sig: ts('ts.fail') });
    expect(answer).toMatchObject({ error: 'StepFailed', message: 'on purpose' });
  });

  it('Python sees the RETRY state of our retrying task', async () => {
    const id = await createPublisher(broker).sendTask('ts.busy', { queue: tsQueue });
    const answer = await python({ broker: brokerUrl, url, kind: 'state', id, want: 'RETRY' });
    expect(answer.state).toBe('RETRY');
    expect(answer.result).toContain('try later');
  });

  it("our get() returns a Python task's value, and times out on none", async () => {
    const id = await createPublisher(broker).sendTask('wf.add', { args: [2, 3], queue: pyQueue });
    await expect(backend.asyncResult(id).get({ timeout: 15 })).resolves.toBe(5);
    await expect(backend.asyncResult(id).state()).resolves.toBe('SUCCESS');
    await expect(backend.asyncResult(randomUUID()).get({ timeout: 0.3 })).rejects.toBeInstanceOf(
      ResultTimeoutError,
    );
  });

  it('the CLI prints a result, a failure (exit 1) and a timeout (exit 1)', async () => {
    const publisher = createPublisher(broker);
    const ok = await publisher.sendTask('wf.add', { args: [4, 5], queue: pyQueue });
    const failed = await publisher.sendTask('ts.fail', { queue: tsQueue });
    const env = { RESULT_BACKEND: url };
    const good = testContext({ registry, env });
    expect(await runResult(good, ok, { timeout: 15 })).toBe(0);
    expect(JSON.parse(good.out())).toEqual({ id: ok, state: 'SUCCESS', result: 9 });
    const bad = testContext({ registry, env });
    expect(await runResult(bad, failed, { timeout: 15 })).toBe(1);
    expect(bad.err()).toContain('serverless_celery.StepFailed');
    const none = testContext({ registry, env });
    expect(await runResult(none, randomUUID(), { timeout: 0.2 })).toBe(1);
    expect(none.err()).toContain('not ready');
  });

  it("our get() raises a Python task's failure with its type", async () => {
    const id = await createPublisher(broker).sendTask('wf.fail', { args: [1], queue: pyQueue });
    const error = await backend
      .asyncResult(id)
      .get({ timeout: 15 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect((error as TaskFailedError).exception).toMatchObject({
      exc_type: 'FatalError',
      exc_module: 'interop_app',
    });
  });

  it("a chain Python → ours → Python returns the right value to Python's get()", async () => {
    const steps = [py('wf.add', [1, 2]), ts('ts.add', [10]), py('wf.add', [100])];
    const answer = await python({ broker: brokerUrl, url, kind: 'chain', steps });
    expect(answer.value).toBe(113);
  });

  it('a failed part fails the chord body with ChordError', async () => {
    const header = [py('wf.add', [1, 1]), ts('ts.fail'), ts('ts.add', [2, 2])];
    const answer = await python({
      broker: brokerUrl,
      url,
      kind: 'chord',
      header,
      body: py('wf.tsum'),
    });
    // Python's get() re-raises the failed parent (the header part) first, as Celery does.
    expect(answer.error).toBe('StepFailed');
    const body = await python({
      broker: brokerUrl,
      url,
      kind: 'state',
      id: answer.id,
      want: 'FAILURE',
    });
    expect(body.state).toBe('FAILURE');
    expect(body.result).toMatch(/^ChordError\(.*Dependency .* raised StepFailed/);
  });

  it.each([
    ['Python', () => py('wf.tsum')],
    ['ours', () => ts('ts.sum')],
  ])('a chord with parts on both workers and its body on %s', async (_side, body) => {
    const header = [
      py('wf.add', [1, 1]),
      ts('ts.add', [2, 2]),
      py('wf.add', [3, 3]),
      ts('ts.add', [4, 4]),
    ];
    const answer = await python({ broker: brokerUrl, url, kind: 'chord', header, body: body() });
    expect(answer.value).toBe(20);
    expect(pyWorker).toBeDefined();
  });
});
