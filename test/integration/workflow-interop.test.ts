/**
 * Workflows across the language boundary, against real Python Celery 5.2.6, on Redis and on
 * RabbitMQ (`BROKERS`): Python sends to our tasks with `link`, `link_error` and as a step of a
 * `chain`; our worker runs the task and publishes what comes next, exactly as a Celery worker
 * would, and the Python worker's records show the continuation ran with the right args, ids,
 * parent and root. Python tasks and ours live on different queues (a Celery worker discards
 * names it does not know).
 *
 * Redis database 9 with unique queues (only their keys are removed); RabbitMQ in a throw-away
 * vhost per file.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import type { WorkerEvent } from '../../src/worker/local-worker.js';
import { BROKERS } from '../helpers/brokers.js';
import {
  type CeleryRunRecord,
  type CeleryWorker,
  celeryPidboxBinding,
  PYTHON,
} from '../helpers/celery.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { deleteQueueKeys, redisUrl } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { startBesidePython, type WorkersBesidePython } from '../helpers/worker.js';

const REDIS_DB = 9;
const PY_TASK = 'sentry.tasks.do_work';

class StepFailed extends Error {
  override name = 'StepFailed';
}

/** Our tasks, on our queue. */
function ourApp(queue: string): Registry {
  const add = defineTask({ name: 'ts.add', queue }, (_kwargs, ctx) => {
    const [x, y] = ctx.args as [number, number];
    return x + y;
  });
  const wrap = defineTask({ name: 'ts.wrap', queue }, (_kwargs, ctx) => ({ wrapped: ctx.args }));
  const fail = defineTask({ name: 'ts.fail', queue, retry: { exclude: [StepFailed] } }, () => {
    throw new StepFailed('on purpose');
  });
  return createRegistry({ tasks: [add, wrap, fail], queues: [{ name: queue }] });
}

/**
 * Python's side of a call, by task name (no task code needed): `link` / `link_error` on one
 * signature, or a `chain` of signatures. Prints the ids Celery gave.
 */
const PYTHON_SENDER = `
import json, sys
from celery import Celery, chain, chord
spec = json.loads(sys.argv[1])
app = Celery('wf-sender', broker=spec['broker'], backend=spec.get('backend'))
app.conf.update(task_serializer='json', accept_content=['json'])
def sig(d):
    return app.signature(d['task'], args=d.get('args', []), queue=d['queue'],
                         immutable=d.get('immutable', False))
if spec['kind'] == 'link':
    r = sig(spec['sig']).apply_async(link=[sig(s) for s in spec.get('link', [])],
                                     link_error=[sig(s) for s in spec.get('link_error', [])])
    print(json.dumps({'id': r.id}))
elif spec['kind'] == 'chord':
    r = chord([sig(s) for s in spec['header']], sig(spec['body'])).apply_async()
    print(json.dumps({'id': r.id, 'group': r.parent.id}))
else:
    r = chain(*[sig(s) for s in spec['steps']]).apply_async()
    ids = []
    node = r
    while node is not None:
        ids.insert(0, node.id)
        node = node.parent
    print(json.dumps({'ids': ids}))
`;

interface SigSpec {
  readonly task: string;
  readonly queue: string;
  readonly args?: readonly unknown[];
  readonly immutable?: boolean;
}

async function pythonSend(spec: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    ['-c', PYTHON_SENDER, JSON.stringify(spec)],
    {
      timeout: 30_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
}

describe.each(BROKERS)('workflows with real Celery 5.2.6 on %s', (kind) => {
  let url: string;
  let vhost: TestVhost | undefined;
  let admin: Redis | undefined;
  let tsQueue: string;
  let pyQueue: string;
  let broker: Broker;
  let python: CeleryWorker;
  let events: WorkerEvent[];
  let workers: WorkersBesidePython;

  beforeAll(async () => {
    if (kind === 'rabbitmq') {
      vhost = await createTestVhost('wf');
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

  beforeEach(async () => {
    workers = await startBesidePython(kind, url, ourApp, 'wf');
    ({ tsQueue, pyQueue, broker, python, events } = workers);
  });

  afterEach(async () => {
    const hostnames = await workers.stop();
    if (admin) {
      await deleteQueueKeys(admin, new RedisKeys(), [tsQueue, pyQueue]);
      for (const hostname of hostnames) {
        const { key, member } = celeryPidboxBinding(hostname);
        await admin.srem(key, member);
      }
    }
  });

  const py = (args: unknown[] = []): SigSpec => ({ task: PY_TASK, queue: pyQueue, args });
  const ts = (task: string, args: unknown[] = []): SigSpec => ({ task, queue: tsQueue, args });
  const pythonRuns = async (count: number): Promise<CeleryRunRecord[]> => {
    await python.waitForRecords(
      (records) => records.filter((r) => r.event === 'run').length >= count,
      {
        timeoutMs: 30_000,
        what: `${count} Python run(s)`,
      },
    );
    return python.runs();
  };

  it('calls the Python callback of our task with our result first (link)', async () => {
    // Act
    const sent = await pythonSend({
      broker: url,
      kind: 'link',
      sig: ts('ts.add', [1, 2]),
      link: [{ task: 'wf.add', queue: pyQueue, args: [100] }],
    });

    // Assess
    const [run] = await pythonRuns(1);
    expect(run).toMatchObject({
      task: 'wf.add',
      args: [3, 100],
      parent_id: sent.id,
      root_id: sent.id,
    });
    expect(events.map((event) => event.outcome)).toEqual([
      expect.objectContaining({ kind: 'succeeded', result: 3 }),
    ]);
  });

  it('sends several callbacks as one group, an immutable one keeping its args', async () => {
    await pythonSend({
      broker: url,
      kind: 'link',
      sig: ts('ts.add', [20, 22]),
      link: [py(['a']), { ...py(['own']), immutable: true }],
    });

    const runs = await pythonRuns(2);
    expect(runs.map((run) => run.args).sort()).toEqual([[42, 'a'], ['own']].sort());
    const groups = new Set(runs.map((run) => run.group));
    expect(groups.size).toBe(1);
    expect([...groups][0]).toEqual(expect.any(String));
  });

  it('calls the Python errback of our failing task with the task id (link_error)', async () => {
    // Act
    const sent = await pythonSend({
      broker: url,
      kind: 'link',
      sig: ts('ts.fail'),
      link: [py(['never'])],
      link_error: [{ task: 'wf.errback', queue: pyQueue }],
    });

    // Assess
    const [run] = await pythonRuns(1);
    expect(run).toMatchObject({
      task: 'wf.errback',
      args: [sent.id],
      parent_id: sent.id,
      root_id: sent.id,
    });
    await sleep(500);
    expect(python.runs()).toHaveLength(1);
    expect(events.map((event) => event.outcome.kind)).toEqual(['dead']);
  });

  it('runs a chain Python → ours → Python, each step given the previous result', async () => {
    // Act
    const sent = await pythonSend({
      broker: url,
      kind: 'chain',
      steps: [py(['step1']), ts('ts.wrap', ['step2']), py(['step3'])],
    });

    // Assess
    const [first, , third] = sent.ids as [string, string, string];
    const runs = await pythonRuns(2);
    const [step1, step3] = runs as [CeleryRunRecord, CeleryRunRecord];
    expect(step1).toMatchObject({ id: first, args: ['step1'], root_id: first });
    const step1Result = { ok: true, id: first, retries: 0 };
    expect(step3).toMatchObject({
      id: third,
      args: [{ wrapped: [step1Result, 'step2'] }, 'step3'],
      root_id: first,
    });
    expect(events.map((event) => event.outcome)).toEqual([
      expect.objectContaining({ kind: 'succeeded', result: { wrapped: [step1Result, 'step2'] } }),
    ]);
    const ours = events[0]?.delivery.result;
    expect(ours?.ok && ours.message.id).toBe(step3.parent_id);
  });

  it('dead-letters, unrun, a chord part it cannot honour (no result backend here)', async () => {
    // Prepare: Python's producer has a result backend (it stores the chord size); we have none.
    const backend = redisUrl(REDIS_DB);

    // Act
    const sent = await pythonSend({
      broker: url,
      backend,
      kind: 'chord',
      header: [ts('ts.add', [1, 1])],
      body: { task: 'wf.tsum', queue: pyQueue },
    });

    // Assess
    try {
      await until(() => events.length > 0, 15_000, "our worker's outcome");
      expect(events.map((event) => event.outcome)).toEqual([
        expect.objectContaining({
          kind: 'dead',
          durationMs: 0,
          reason: expect.objectContaining({
            reason: 'unsupported-workflow',
            detail: expect.stringMatching(
              /^embed\.chord: this task is a chord part.*result backend/,
            ),
          }),
        }),
      ]);
      const [dead] = await broker.deadLetters(tsQueue, 10);
      expect(dead).toMatchObject({ task: 'ts.add', reason: 'unsupported-workflow' });
      await sleep(300);
      expect(python.runs()).toEqual([]);
    } finally {
      const results = new Redis(backend, { maxRetriesPerRequest: 1 });
      const meta = `celery-taskset-meta-${sent.group as string}`;
      await results.del(`${meta}.s`, `${meta}.j`, `${meta}.t`);
      await results.quit();
    }
  });
});
