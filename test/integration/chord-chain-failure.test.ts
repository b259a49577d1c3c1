/**
 * A chord whose header part is a chain that fails before its last step, as Celery 5.2.6 ends it
 * (`mark_as_failure` counts the chain's last step as a failed part; the body fails with
 * `ChordError` and its errbacks go out as one group): first our backend alone, then a chord sent
 * by Python whose chain's first step runs on our worker.
 *
 * A throw-away redis-server is the broker and the backend, so nothing shared is touched.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { RedisResultBackend } from '../../src/brokers/redis/redis-result-backend.js';
import { applySignature, chain, chord, routeFor } from '../../src/core/canvas.js';
import { DEAD_LETTER_REASONS } from '../../src/core/dead-letter.js';
import { DEFAULT_ORIGIN, type TaskMessage } from '../../src/core/message.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { signature } from '../../src/core/signature.js';
import { defineTask } from '../../src/core/task.js';
import {
  type CeleryRunRecord,
  type CeleryWorker,
  PYTHON,
  startCeleryWorker,
  stopCeleryWorkers,
} from '../helpers/celery.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.js';
import { startLocalWorker } from '../helpers/worker.js';

class StepFailed extends Error {
  override name = 'StepFailed';
}

function ourApp(queue: string): Registry {
  const fail = defineTask(
    { name: 'ts.fail', queue, retry: { exclude: [StepFailed] } },
    async () => {
      // Lets the Python part finish first, so our worker counts the chord's last part.
      await sleep(1500);
      throw new StepFailed('on purpose');
    },
  );
  return createRegistry({ tasks: [fail], queues: [{ name: queue }] });
}

/** Python sends chord([chain(fail, add(1)), add(1, 2)], tsum.on_error(errback)) and waits. */
const PYTHON_CHORD = `
import json, sys
from celery import Celery, chain, chord
spec = json.loads(sys.argv[1])
app = Celery('ccf', broker=spec['url'], backend=spec['url'])
app.conf.update(task_serializer='json', accept_content=['json'], result_serializer='json')
def sig(task, *args, queue):
    return app.signature(task, args=args, queue=queue)
py = spec['py']
body = sig('wf.tsum', queue=py).on_error(sig('wf.errback', queue=py))
header = [chain(sig(spec['fail'], queue=spec['failQueue']), sig('wf.add', 1, queue=py)),
          sig('wf.add', 1, 2, queue=py)]
r = chord(header, body).apply_async()
out = {'body': r.id, 'culprit': r.parent.results[0].id}
try:
    # The body alone: following parents would raise the chain's StepFailed first.
    out['value'] = r.get(timeout=20, follow_parents=False)
except Exception as e:
    out.update(error=type(e).__name__, module=type(e).__module__, message=str(e))
print(json.dumps(out))
`;

describe('a chord whose chain part fails early, on a throw-away Redis', () => {
  let redis: ThrowawayRedis;

  beforeAll(async () => {
    redis = await startThrowawayRedis();
  });

  afterAll(async () => {
    await stopCeleryWorkers();
    await redis?.stop();
  });

  it('our backend counts the chain as a failed part and fails the body', async () => {
    // Prepare
    const backend = new RedisResultBackend(redis.url);
    const body = signature('wf.tsum', {
      options: { id: `body-${randomUUID()}`, linkError: signature('wf.errback') },
    });
    const canvas = chord(
      [chain(signature('ts.fail'), signature('wf.add', { args: [1] })), signature('wf.add')],
      body,
    );
    const expansion = applySignature(canvas, { idSeed: randomUUID(), route: () => 'celery' });
    const [failing, other] = expansion.messages as [TaskMessage, TaskMessage];
    const last = failing.embed.chain?.[0] as { options: { task_id: string; group_id: string } };
    await backend.setChordSize(expansion.chordSizes);
    const published: TaskMessage[] = [];
    const publish = async (messages: readonly TaskMessage[]) => {
      published.push(...messages);
    };
    const reason = {
      reason: DEAD_LETTER_REASONS.notRetryable,
      detail: 'failed',
      task: 'ts.fail',
      id: failing.id,
      retries: 0,
      errorType: 'StepFailed',
      errorMessage: 'on purpose',
    };

    // Act
    const succeeded = { kind: 'succeeded', result: 3, durationMs: 1 } as const;
    await backend.record(
      [{ message: other, outcome: succeeded, store: true, children: [] }],
      publish,
    );
    const countedBefore = published.length;
    const dead = { kind: 'dead', reason, durationMs: 1 } as const;
    await backend.record([{ message: failing, outcome: dead, store: true, children: [] }], publish);

    // Assess
    const bodyId = body.options.task_id as string;
    const bodyMeta = await backend.getMeta(bodyId);
    const stepMeta = await backend.getMeta(last.options.task_id);
    await backend.close();
    expect(countedBefore).toBe(0);
    expect(bodyMeta).toMatchObject({
      status: 'FAILURE',
      result: {
        exc_type: 'ChordError',
        exc_message: [`Dependency ${last.options.task_id} raised StepFailed('on purpose')`],
        exc_module: 'celery.exceptions',
      },
    });
    expect(stepMeta).toMatchObject({ status: 'FAILURE', group_id: last.options.group_id });
    expect(published.map((m) => [m.task, m.args, m.parentId, m.group !== null])).toEqual([
      ['wf.errback', [bodyId], bodyId, true],
    ]);
  });

  it('a chord sent by Celery 5.2.6 fails as Celery would when our step fails', async () => {
    // Prepare
    const tsQueue = `sc-ccf-ts-${randomUUID()}`;
    const pyQueue = `sc-ccf-py-${randomUUID()}`;
    const registry = ourApp(tsQueue);
    const broker: Broker = createBroker(redis.url, {
      queues: registry.queues,
      logger: { warn: () => undefined },
    });
    const backend = new RedisResultBackend(redis.url, { route: routeFor(registry) });
    const pyWorker: CeleryWorker = await startCeleryWorker({
      broker: redis.url,
      queue: pyQueue,
      include: ['workflow_app'],
      resultBackend: redis.url,
    });
    const stopOurs = startLocalWorker(broker, registry, {
      queues: [tsQueue],
      resultBackend: backend,
    });

    try {
      // Act: the reference (the chain's failing step on Python), then ours.
      const reference = await sendChord({ url: redis.url, py: pyQueue, fail: 'wf.fail' });
      const ours = await sendChord({ url: redis.url, py: pyQueue, fail: 'ts.fail', tsQueue });
      const errbackRuns = await pyWorker.waitForRecords(
        (records) => errbacksOf(records).length >= 2,
        { what: 'two wf.errback runs', timeoutMs: 20_000 },
      );

      // Assess
      expect(reference).toMatchObject({
        error: 'ChordError',
        module: 'celery.exceptions',
        message: `Dependency ${reference.culprit} raised FatalError('wf.fail() on purpose')`,
      });
      expect(ours).toMatchObject({
        error: 'ChordError',
        module: 'celery.exceptions',
        message: `Dependency ${ours.culprit} raised StepFailed('on purpose')`,
      });
      const shape = (body: unknown) => {
        const run = errbacksOf(errbackRuns).find((record) => record.args[0] === body);
        return {
          args: run?.args.length === 1,
          parent: run?.parent_id === body,
          root: run?.root_id === body,
          grouped: typeof run?.group === 'string',
        };
      };
      expect(shape(reference.body)).toEqual({
        args: true,
        parent: true,
        root: true,
        grouped: true,
      });
      expect(shape(ours.body)).toEqual(shape(reference.body));
      // Our step failed last (it sleeps first), so our backend ended the chord and sent it.
      const oursRun = errbacksOf(errbackRuns).find((record) => record.args[0] === ours.body);
      expect(oursRun?.origin).toBe(DEFAULT_ORIGIN);
    } finally {
      await stopOurs();
      await pyWorker.stop();
      await broker.close();
      await backend.close();
    }
  });
});

function errbacksOf(records: readonly { event: string; task?: string }[]): CeleryRunRecord[] {
  return records.filter(
    (record): record is CeleryRunRecord => record.event === 'run' && record.task === 'wf.errback',
  );
}

async function sendChord(spec: {
  url: string;
  py: string;
  fail: string;
  tsQueue?: string;
}): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    ['-c', PYTHON_CHORD, JSON.stringify({ ...spec, failQueue: spec.tsQueue ?? spec.py })],
    { timeout: 40_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
}
