/**
 * The Redis result backend across the language boundary, against real Python Celery (5.2.6, and
 * 5.6.3 with `CELERY56_PY`): Python's `AsyncResult(id).get()` on results our worker stored
 * (success, failure with its exception type, retry state), our `AsyncResult.get()` and state on a
 * Python task's result (success, failure, retry), chains Python → ours → Python → ours sent from
 * either side whose final `.get()` returns the right value, chords whose header runs on both
 * workers and whose body runs on either, and (Celery ≥ 5.3) `global_keyprefix` on both sides.
 *
 * Both brokers (`BROKERS`): a throw-away redis-server per describe is the backend (and the Redis
 * broker), so nothing shared is touched; RabbitMQ in a throw-away vhost per file. One Python
 * worker and one of ours per describe, on queues of their own: starting a Python worker per test
 * cost about half of each test's time.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { RedisResultBackend } from '../../src/brokers/redis/redis-result-backend.js';
import { runResult } from '../../src/cli/commands/result.js';
import { chain, routeFor } from '../../src/core/canvas.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { ResultTimeoutError, TaskFailedError } from '../../src/core/result-backend.js';
import { signature } from '../../src/core/signature.js';
import { defineTask } from '../../src/core/task.js';
import { createPublisher } from '../../src/producer/publisher.js';
import { BROKERS } from '../helpers/brokers.js';
import {
  type CeleryWorker,
  PYTHON,
  startCeleryWorker,
  stopCeleryWorkers,
  TEST_PYTHON_DIR,
} from '../helpers/celery.js';
import { testContext } from '../helpers/cli.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.js';
import { startLocalWorker } from '../helpers/worker.js';

/**
 * The Celery versions to prove against: Debian's 5.2.6 always; 5.6.3 too when `CELERY56_PY`
 * names the python of a venv made by `shared/celery-interop/celery56-venv.sh DIR`.
 */
const CELERIES = [
  { version: '5.2.6', python: PYTHON },
  ...(process.env.CELERY56_PY ? [{ version: '5.6.3', python: process.env.CELERY56_PY }] : []),
];
const CASES = CELERIES.flatMap((celery) =>
  BROKERS.map((kind) => [`Celery ${celery.version} on ${kind}`, { ...celery, kind }] as const),
);
/** `result_backend_transport_options={'global_keyprefix': …}` exists from Celery 5.3 on. */
const PREFIX_CASES = CASES.filter(([, celery]) => celery.version !== '5.2.6');

class StepFailed extends Error {
  override name = 'StepFailed';
}
class Busy extends Error {
  override name = 'Busy';
}

function ourApp(queue: string) {
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
  const registry = createRegistry({ tasks: [add, sum, fail, busy], queues: [{ name: queue }] });
  return { registry, add };
}

/**
 * The Python worker's tasks (`-I rb_tasks`, from a temp dir): `workflow_app`'s, plus what the
 * shared interop app lacks, a switch for a key prefix and a task that retries much later. It
 * imports `workflow_app` itself: Celery's `-I` is one comma-separated option, so of two `-I`
 * flags only the last counts.
 */
const PY_EXTRA_MODULE = `
import os
import workflow_app  # noqa: F401  (registers the wf.* tasks)
from interop_app import QUEUE, app

if os.environ.get('RB_GLOBAL_KEYPREFIX'):
    app.conf.result_backend_transport_options = {
        'global_keyprefix': os.environ['RB_GLOBAL_KEYPREFIX'],
    }


class Busy(Exception):
    pass


@app.task(name='rb.busy', bind=True, queue=QUEUE)
def busy(self):
    raise self.retry(exc=Busy('try later'), countdown=600)
`;

/** Python's side: sends a call or a canvas by name, then `.get()`s or reads the state. */
const PYTHON_CLIENT = `
import json, sys, time
from celery import Celery, chain, chord
spec = json.loads(sys.argv[1])
app = Celery('rb-client', broker=spec['broker'], backend=spec['url'])
app.conf.update(task_serializer='json', accept_content=['json'], result_serializer='json')
if spec.get('keyprefix'):
    app.conf.result_backend_transport_options = {'global_keyprefix': spec['keyprefix']}
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
ids, node = [], r
while node is not None:
    ids.insert(0, node.id)
    node = node.parent
try:
    value = r.get(timeout=15)
    done = r.date_done.isoformat()
    # Each step's stored children, as Celery rebuilds them (result_from_tuple).
    children = [[c.id for c in app.AsyncResult(i).children or []] for i in ids]
    print(json.dumps({'id': r.id, 'ids': ids, 'value': value, 'date_done': done,
                      'children': children}))
except Exception as e:
    print(json.dumps({'id': r.id, 'ids': ids, 'error': type(e).__name__, 'message': str(e)}))
`;

interface ClientSpec {
  readonly kind: 'state' | 'call' | 'chain' | 'chord';
  readonly [key: string]: unknown;
}

/** Runs {@link PYTHON_CLIENT} with `interpreter`; resolves to what it printed last. */
async function pythonClient(
  interpreter: string,
  spec: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(
    interpreter,
    ['-c', PYTHON_CLIENT, JSON.stringify(spec)],
    { timeout: 40_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
}

let extraDir: string;
/** One vhost for the file: `rabbitmqctl` takes seconds to add or delete one. */
let vhost: TestVhost | undefined;

beforeAll(async () => {
  extraDir = mkdtempSync(path.join(tmpdir(), 'sc-rb-python-'));
  writeFileSync(path.join(extraDir, 'rb_tasks.py'), PY_EXTRA_MODULE);
  if (BROKERS.includes('rabbitmq')) vhost = await createTestVhost('rb');
});

afterAll(async () => {
  rmSync(extraDir, { recursive: true, force: true });
  await vhost?.remove();
});

/** Both workers of a describe, on a throw-away Redis (and the file's vhost), with their queues. */
interface Sides {
  readonly redis: ThrowawayRedis;
  readonly tsQueue: string;
  readonly pyQueue: string;
  readonly registry: Registry;
  readonly add: ReturnType<typeof ourApp>['add'];
  readonly broker: Broker;
  readonly backend: RedisResultBackend;
  readonly pyWorker: CeleryWorker;
  /** Runs the Python client of the Celery under test, with the broker, backend and prefix. */
  client(spec: ClientSpec): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * Starts a Redis, the Python worker and ours (on the file's vhost for RabbitMQ); `keyPrefix` is
 * Celery's `global_keyprefix` on every side. What started is stopped again if a later step fails.
 */
async function startSides(
  kind: 'redis' | 'rabbitmq',
  python: string,
  keyPrefix?: string,
): Promise<Sides> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const cleanup of [...cleanups].reverse()) await cleanup();
  };
  try {
    const redis = await startThrowawayRedis();
    cleanups.push(() => redis.stop());
    const brokerUrl = kind === 'redis' ? redis.url : vhost?.url;
    if (brokerUrl === undefined) throw new Error('no vhost: BROKERS does not list rabbitmq');
    const tsQueue = `sc-rb-ts-${randomUUID()}`;
    const pyQueue = `sc-rb-py-${randomUUID()}`;
    const { registry, add } = ourApp(tsQueue);
    const broker = createBroker(brokerUrl, {
      queues: registry.queues,
      logger: { warn: () => undefined },
    });
    cleanups.push(() => broker.close());
    const backendUrl = keyPrefix ? `${redis.url}?global_keyprefix=${keyPrefix}` : redis.url;
    const backend = new RedisResultBackend(backendUrl, { route: routeFor(registry) });
    cleanups.push(() => backend.close());
    cleanups.push(() => stopCeleryWorkers());
    const pyWorker = await startCeleryWorker({
      broker: brokerUrl,
      queue: pyQueue,
      include: ['rb_tasks'],
      resultBackend: redis.url,
      python,
      env: {
        PYTHONPATH: [extraDir, TEST_PYTHON_DIR, process.env.PYTHONPATH].filter(Boolean).join(':'),
        ...(keyPrefix ? { RB_GLOBAL_KEYPREFIX: keyPrefix } : {}),
      },
    });
    cleanups.push(
      startLocalWorker(broker, registry, { queues: [tsQueue], resultBackend: backend }),
    );
    const client = (spec: ClientSpec) =>
      pythonClient(python, { broker: brokerUrl, url: redis.url, keyprefix: keyPrefix, ...spec });
    return { redis, tsQueue, pyQueue, registry, add, broker, backend, pyWorker, client, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

describe.each(CASES)('the Redis result backend with real %s', (_, { python, kind }) => {
  let sides: Sides;

  beforeAll(async () => {
    sides = await startSides(kind, python);
  });

  afterAll(async () => {
    await sides?.stop();
  });

  const ts = (task: string, args: unknown[] = []) => ({ task, queue: sides.tsQueue, args });
  const py = (task: string, args: unknown[] = []) => ({ task, queue: sides.pyQueue, args });

  it("Python's get() returns our task's value", async () => {
    const before = Date.now();
    const answer = await sides.client({ kind: 'call', sig: ts('ts.add', [1, 2]) });
    expect(answer.value).toBe(3);
    // Python parsed our date_done (an aware ISO 8601 time) into a datetime.
    const done = Date.parse(answer.date_done as string);
    expect(done).toBeGreaterThanOrEqual(before - 1000);
    expect(done).toBeLessThanOrEqual(Date.now());
  });

  it("Python's get() raises our failure with its exception type", async () => {
    const answer = await sides.client({ kind: 'call', sig: ts('ts.fail') });
    expect(answer).toMatchObject({ error: 'StepFailed', message: 'on purpose' });
  });

  it('Python sees the RETRY state of our retrying task', async () => {
    const id = await createPublisher(sides.broker).sendTask('ts.busy', { queue: sides.tsQueue });
    const answer = await sides.client({ kind: 'state', id, want: 'RETRY' });
    expect(answer.state).toBe('RETRY');
    expect(answer.result).toContain('try later');
  });

  it("our get() returns a Python task's value, and times out on none", async () => {
    const { broker, backend, pyQueue } = sides;
    const id = await createPublisher(broker).sendTask('wf.add', { args: [2, 3], queue: pyQueue });
    await expect(backend.asyncResult(id).get({ timeout: 15 })).resolves.toBe(5);
    await expect(backend.asyncResult(id).state()).resolves.toBe('SUCCESS');
    await expect(backend.asyncResult(randomUUID()).get({ timeout: 0.3 })).rejects.toBeInstanceOf(
      ResultTimeoutError,
    );
  });

  it('the CLI prints a result, a failure (exit 1) and a timeout (exit 1)', async () => {
    const publisher = createPublisher(sides.broker);
    const ok = await publisher.sendTask('wf.add', { args: [4, 5], queue: sides.pyQueue });
    const failed = await publisher.sendTask('ts.fail', { queue: sides.tsQueue });
    const env = { RESULT_BACKEND: sides.redis.url };
    const { registry } = sides;
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
    const { broker, backend, pyQueue } = sides;
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

  it('we see the RETRY state of a Python task that retries, and get() keeps waiting', async () => {
    const { broker, backend, pyQueue } = sides;
    const id = await createPublisher(broker).sendTask('rb.busy', { queue: pyQueue });
    const result = backend.asyncResult(id);
    await vi.waitFor(async () => expect(await result.state()).toBe('RETRY'), {
      timeout: 15_000,
      interval: 100,
    });
    expect((await result.meta()).result).toEqual({
      exc_type: 'Busy',
      exc_message: ['try later'],
      exc_module: 'rb_tasks',
    });
    await expect(result.ready()).resolves.toBe(false);
    // As Celery's get(): RETRY is not a ready state, so it waits on (for 600 s, here).
    await expect(result.get({ timeout: 0.5 })).rejects.toBeInstanceOf(ResultTimeoutError);
  });

  it("a chain Python → ours → Python returns the right value to Python's get()", async () => {
    const steps = [py('wf.add', [1, 2]), ts('ts.add', [10]), py('wf.add', [100])];
    const answer = await sides.client({ kind: 'chain', steps });
    expect(answer.value).toBe(113);
  });

  it('a chain Python → ours → Python → ours sent from Python: its get() returns the sum', async () => {
    const steps = [
      py('wf.add', [1, 2]),
      ts('ts.add', [10]),
      py('wf.add', [100]),
      ts('ts.add', [1000]),
    ];
    const answer = await sides.client({ kind: 'chain', steps });
    expect(answer.value).toBe(1113);
    // Every step's own result, read back by us: each side stored its steps.
    const ids = answer.ids as string[];
    expect(ids).toHaveLength(4);
    const values = await Promise.all(
      ids.map((id) => sides.backend.asyncResult(id).get({ timeout: 5 })),
    );
    expect(values).toEqual([3, 13, 113, 1113]);
    // Each step names the next as its child, ours in Celery's format as Python's are.
    expect(answer.children).toEqual([[ids[1]], [ids[2]], [ids[3]], []]);
  });

  it('a chain Python → ours → Python → ours sent from our side: our get() returns the sum', async () => {
    const { add, backend, broker, pyQueue, pyWorker } = sides;
    const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()] as const;
    const wfAdd = (args: number[], id: string) =>
      signature('wf.add', { args, options: { queue: pyQueue, id } });
    const id = await createPublisher(broker).applyAsync(
      chain(
        wfAdd([1, 2], ids[0]),
        add.s({ args: [10], id: ids[1] }),
        wfAdd([100], ids[2]),
        add.s({ args: [1000], id: ids[3] }),
      ),
    );
    expect(id).toBe(ids[3]);
    await expect(backend.asyncResult(id).get({ timeout: 20 })).resolves.toBe(1113);
    const values = await Promise.all(
      ids.map((step) => backend.asyncResult(step).get({ timeout: 5 })),
    );
    expect(values).toEqual([3, 13, 113, 1113]);
    const pythonRuns = pyWorker.runs().filter((run) => run.root_id === ids[0]);
    expect(pythonRuns.map((run) => [run.id, run.args])).toEqual([
      [ids[0], [1, 2]],
      [ids[2], [13, 100]],
    ]);
  });

  it("a chain whose step on our side fails: Python's get() raises it, and so does every later step", async () => {
    const steps = [py('wf.add', [1, 2]), ts('ts.fail'), py('wf.add', [100]), ts('ts.add', [1000])];
    const answer = await sides.client({ kind: 'chain', steps });
    expect(answer).toMatchObject({ error: 'StepFailed', message: 'on purpose' });
    // Celery's mark_as_failure stores the failure on the rest of the chain (Python's get() finds
    // it on a parent anyway): steps never run hold it, so a waiter on any of them wakes.
    const [, failed, ...never] = answer.ids as string[];
    const errors = await Promise.all(
      [failed, ...never].map((id) =>
        sides.backend
          .asyncResult(id ?? '')
          .get({ timeout: 5 })
          .catch((e: unknown) => e),
      ),
    );
    expect(errors.map((e) => (e as TaskFailedError).exception?.exc_type)).toEqual([
      'StepFailed',
      'StepFailed',
      'StepFailed',
    ]);
  });

  it('a chain whose Python step fails: our get() on its last step raises the failure', async () => {
    const { add, backend, broker, pyQueue } = sides;
    const id = await createPublisher(broker).applyAsync(
      chain(
        add.s({ args: [1, 2] }),
        signature('wf.fail', { options: { queue: pyQueue } }),
        add.s({ args: [1000] }),
      ),
    );
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

  it('a failed part fails the chord body with ChordError', async () => {
    const header = [py('wf.add', [1, 1]), ts('ts.fail'), ts('ts.add', [2, 2])];
    const answer = await sides.client({ kind: 'chord', header, body: py('wf.tsum') });
    // Python's get() re-raises the failed parent (the header part) first, as Celery does.
    expect(answer.error).toBe('StepFailed');
    const body = await sides.client({ kind: 'state', id: answer.id, want: 'FAILURE' });
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
    const answer = await sides.client({ kind: 'chord', header, body: body() });
    expect(answer.value).toBe(20);
  });
});

describe.each(PREFIX_CASES)("global_keyprefix 'pfx' with real %s", (_, { python, kind }) => {
  let sides: Sides;
  let keys: Redis;

  beforeAll(async () => {
    sides = await startSides(kind, python, 'pfx');
    keys = new Redis(sides.redis.url, { maxRetriesPerRequest: 1 });
  });

  afterAll(async () => {
    await keys?.quit();
    await sides?.stop();
  });

  /** Every key naming `id`'s result, whatever comes before it. */
  const metaKeysOf = (id: string) => keys.keys(`*celery-task-meta-${id}`);

  it("Python's get() reads our result, stored under pfx_celery-task-meta-<id>", async () => {
    const answer = await sides.client({
      kind: 'call',
      sig: { task: 'ts.add', queue: sides.tsQueue, args: [1, 2] },
    });
    expect(answer.value).toBe(3);
    await expect(metaKeysOf(answer.id as string)).resolves.toEqual([
      `pfx_celery-task-meta-${answer.id}`,
    ]);
  });

  it("our get() reads Python's result, stored under pfx_celery-task-meta-<id>", async () => {
    const { backend, broker, pyQueue } = sides;
    const id = await createPublisher(broker).sendTask('wf.add', { args: [2, 3], queue: pyQueue });
    await expect(backend.asyncResult(id).get({ timeout: 15 })).resolves.toBe(5);
    await expect(metaKeysOf(id)).resolves.toEqual([`pfx_celery-task-meta-${id}`]);
  });

  it('a chord with parts on both workers counts them under the prefix, body on ours', async () => {
    const header = [
      { task: 'wf.add', queue: sides.pyQueue, args: [1, 1] },
      { task: 'ts.add', queue: sides.tsQueue, args: [2, 2] },
    ];
    const body = { task: 'ts.sum', queue: sides.tsQueue };
    const answer = await sides.client({ kind: 'chord', header, body });
    expect(answer.value).toBe(6);
    await expect(metaKeysOf(answer.id as string)).resolves.toEqual([
      `pfx_celery-task-meta-${answer.id}`,
    ]);
  });
});
