/**
 * Celery time limits end to end: real Python Celery 5.2.6 sends with `time_limit` /
 * `soft_time_limit` (`app.send_task`, as `apply_async` does), and our local worker runs the
 * tasks on real Redis, database 12, one queue per test, its keys removed afterwards.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { SoftTimeLimitExceeded, TimeLimitExceededError } from '../../src/core/errors.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { runLocalWorker, type WorkerEvent } from '../../src/worker/local-worker.js';
import { CELERY_INTEROP_DIR, PYTHON } from '../helpers/celery.js';
import { deleteQueueKeys, recordingLogger, redisUrl } from '../helpers/redis.js';

const REDIS_URL = redisUrl(12);
const KEYS = new RedisKeys();
const HANGS = 'sc_limits.hangs';
const QUICK = 'sc_limits.quick';
const WATCHES = 'sc_limits.watches_signal';

/** What a task saw while it ran: when it started and why its signal fired, by task id. */
interface Seen {
  readonly startedAt: number;
  abortedAt?: number;
  reason?: unknown;
}

// The `interop_app` Celery app routes to INTEROP_QUEUE; `send_task` needs none of our code.
const SEND_SCRIPT = `
import json, sys
sys.path.insert(0, sys.argv[1])
from interop_app import app
spec = json.loads(sys.argv[2])
res = app.send_task(spec['task'], args=spec['args'], queue=spec['queue'],
                    time_limit=spec.get('time_limit'), soft_time_limit=spec.get('soft_time_limit'))
print(res.id)
`;

let redis: Redis;
let queue: string;
let registry: Registry;
let broker: Broker;
let seen: Map<string, Seen>;

beforeAll(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await redis.quit();
});

beforeEach(() => {
  queue = `sc-limits-${randomUUID()}`;
  seen = new Map();
  const watch = (id: string, signal: AbortSignal) => {
    const entry: Seen = { startedAt: Date.now() };
    seen.set(id, entry);
    signal.addEventListener('abort', () => {
      entry.abortedAt = Date.now();
      entry.reason = signal.reason;
    });
  };
  const hangs = defineTask({ name: HANGS, queue }, (_, ctx) => {
    watch(ctx.id, ctx.signal);
    return new Promise<never>(() => {});
  });
  const quick = defineTask({ name: QUICK, queue }, (_, ctx) => {
    watch(ctx.id, ctx.signal);
    return 'done';
  });
  const watches = defineTask({ name: WATCHES, queue }, async (_, ctx) => {
    watch(ctx.id, ctx.signal);
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    return 'cleaned up after the soft limit';
  });
  registry = createRegistry({ tasks: [hangs, quick, watches], queues: [{ name: queue }] });
  broker = createBroker(
    { kind: 'redis', url: REDIS_URL },
    { queues: registry.queues, logger: recordingLogger() },
  );
});

afterEach(async () => {
  await broker.close();
  await deleteQueueKeys(redis, KEYS, [queue]);
});

/** Sends `task` from Python Celery with the given limits; resolves with its id. */
async function sendFromPython(
  task: string,
  limits: { time_limit?: number; soft_time_limit?: number },
): Promise<string> {
  const spec = JSON.stringify({ task, args: [], queue, ...limits });
  const { stdout } = await promisify(execFile)(
    PYTHON,
    ['-c', SEND_SCRIPT, CELERY_INTEROP_DIR, spec],
    {
      timeout: 30_000,
      env: { ...process.env, INTEROP_BROKER_URL: REDIS_URL, INTEROP_QUEUE: queue },
    },
  );
  return stdout.trim();
}

/** Runs our local worker on the queue while `act` runs, until `done(events)` or 20 s. */
async function withWorker(
  act: () => Promise<void>,
  done: (events: readonly WorkerEvent[]) => boolean,
): Promise<WorkerEvent[]> {
  const events: WorkerEvent[] = [];
  const controller = new AbortController();
  const worker = runLocalWorker(broker, registry, {
    queues: [queue],
    waitMs: 200,
    restoreEveryMs: 60_000,
    signal: controller.signal,
    onOutcome: (event) => events.push(event),
  });
  try {
    await act();
    const deadline = Date.now() + 20_000;
    while (!done(events) && Date.now() < deadline) await sleep(50);
  } finally {
    controller.abort();
    await worker;
  }
  return events;
}

function eventOf(events: readonly WorkerEvent[], id: string): WorkerEvent {
  const event = events.find(
    (candidate) => candidate.delivery.result.ok && candidate.delivery.result.message.id === id,
  );
  if (!event) expect.fail(`no outcome for ${id}; outcomes: ${JSON.stringify(events)}`);
  return event;
}

describe('time limits set by Python Celery', () => {
  it('dead-letters a task past its time_limit=1 at about 1 s, and the worker goes on', async () => {
    // Prepare
    let hungId = '';
    let quickId = '';

    // Act
    const events = await withWorker(
      async () => {
        hungId = await sendFromPython(HANGS, { time_limit: 1 });
        const started = Date.now();
        while (!seen.has(hungId) && Date.now() - started < 10_000) await sleep(20);
        quickId = await sendFromPython(QUICK, {});
      },
      (settled) => settled.length >= 2,
    );

    // Assess
    const hung = eventOf(events, hungId);
    expect(hung.delivery.result.ok && hung.delivery.result.message.timeLimit).toEqual([1, null]);
    expect(hung.outcome).toMatchObject({
      kind: 'dead',
      reason: {
        reason: 'not-retryable',
        errorType: 'TimeLimitExceeded',
        errorMessage: `task ${HANGS} exceeded the time limit of 1 s set by its message`,
      },
    });
    const duration = (hung.outcome as { durationMs: number }).durationMs;
    expect(duration).toBeGreaterThanOrEqual(900);
    expect(duration).toBeLessThanOrEqual(3000);
    const hungRun = seen.get(hungId);
    expect(hungRun?.reason).toBeInstanceOf(TimeLimitExceededError);
    const signalAfter = (hungRun?.abortedAt ?? 0) - (hungRun?.startedAt ?? 0);
    expect(signalAfter).toBeGreaterThanOrEqual(900);
    expect(signalAfter).toBeLessThanOrEqual(3000);
    expect(eventOf(events, quickId).outcome).toMatchObject({ kind: 'succeeded' });
    expect(seen.get(quickId)?.startedAt).toBeGreaterThan(hungRun?.startedAt ?? Infinity);
    expect(await broker.deadLetters(queue, 10)).toEqual([
      expect.objectContaining({
        id: hungId,
        task: HANGS,
        reason: 'not-retryable',
        errorType: 'TimeLimitExceeded',
      }),
    ]);
  });

  it('fires the task signal with SoftTimeLimitExceeded at soft_time_limit=1', async () => {
    // Prepare
    let id = '';

    // Act
    const events = await withWorker(
      async () => {
        id = await sendFromPython(WATCHES, { soft_time_limit: 1 });
      },
      (settled) => settled.length >= 1,
    );

    // Assess
    const event = eventOf(events, id);
    expect(event.delivery.result.ok && event.delivery.result.message.timeLimit).toEqual([null, 1]);
    expect(event.outcome).toMatchObject({ kind: 'succeeded' });
    const run = seen.get(id);
    expect(run?.reason).toBeInstanceOf(SoftTimeLimitExceeded);
    expect(run?.reason).toMatchObject({
      name: 'SoftTimeLimitExceeded',
      message: `task ${WATCHES} exceeded the soft time limit of 1 s set by its message`,
    });
    const firedAfter = (run?.abortedAt ?? 0) - (run?.startedAt ?? 0);
    expect(firedAfter).toBeGreaterThanOrEqual(900);
    expect(firedAfter).toBeLessThanOrEqual(3000);
    expect(await broker.deadLetters(queue, 10)).toEqual([]);
  });
});
