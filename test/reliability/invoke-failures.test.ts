/**
 * Invoke failures of the per-task functions (issue #8), on the real Redis broker (database 3 of
 * 127.0.0.1:6379, a queue of its own) and the real worker loop invoking each task's function
 * through `lambdaExecutor`, with a Lambda client that throttles, fails, times out or crashes on a
 * plan. A failed invoke re-queues the message without spending a task retry (its
 * `x-sc-invoke-failures` counts up, `retries` stays), up to the poison cap (5), where it is
 * dead-lettered as `poison` with the last error in the reason. A throttled invoke is not a
 * failure: the worker waits and invokes the same messages again, counting nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueStats } from '../../src/brokers/broker.js';
import type { RedisBroker } from '../../src/brokers/redis/redis-broker.js';
import { decodeRedisMessage } from '../../src/core/redis-codec.js';
import { createRegistry } from '../../src/core/registry.js';
import { INVOKE_FAILURES_HEADER } from '../../src/core/settlement.js';
import { defineTask } from '../../src/core/task.js';
import { deployedFunctionName } from '../../src/lambda/function-names.js';
import { lambdaExecutor } from '../../src/lambda/lambda-executor.js';
import type { WorkerEvent } from '../../src/worker/dispatch.js';
import { runWorker } from '../../src/worker/local-worker.js';
import { RetryableError } from '../helpers/factories.js';
import { recordingLogger, redisBench } from '../helpers/redis.js';
import { type FaultyInvoker, faultyInvoker, type InvokeFault } from './helpers/poison-invoker.js';

const DB = 3;
/** The dispatcher's default poison cap. */
const CAP = 5;
const DRAIN_TIMEOUT_MS = 60_000;

/** How each task's function fails, invoke after invoke (then it answers normally). */
const PLANS: Record<string, readonly InvokeFault[]> = {
  'inv.throttled': ['throttle', 'throttle', 'throttle', 'throttle', 'throttle'],
  'inv.unavailable': ['unavailable', 'unavailable', 'unavailable', 'unavailable', 'unavailable'],
  'inv.timed_out': ['timeout', 'timeout', 'timeout', 'timeout', 'timeout'],
  // Throttles in between count for nothing: the fifth failure is the crash.
  'inv.mixed': [
    'unavailable',
    'throttle',
    'timeout',
    'unavailable',
    'throttle',
    'unavailable',
    'crash',
  ],
  'inv.flaky': ['throttle', 'unavailable'],
  // Invoke failures, then a task retry (retries 1, the count starts over), then one more failure.
  'inv.retried': ['crash', 'unavailable', null, 'crash'] as InvokeFault[],
  'inv.ok': [],
};

/** One start of a task body. */
interface Start {
  readonly task: string;
  readonly id: string;
  readonly retries: number;
}

const bench = redisBench(DB);
const starts: Start[] = [];
const events: WorkerEvent[] = [];
let queue: string;
let broker: RedisBroker;
let invoker: FaultyInvoker;
let ids: Record<string, string>;
let stats: QueueStats;
let workerError: unknown = null;
let workerWarnings: string[] = [];

const record = (task: string) => (_kwargs: unknown, ctx: { id: string; retries: number }) => {
  starts.push({ task, id: ctx.id, retries: ctx.retries });
};

/** The invokes of a task's function, in order. */
const attemptsOf = (task: string) =>
  invoker.attempts.filter((attempt) => attempt.ids.includes(ids[task] ?? ''));
const startsOf = (task: string) => starts.filter((start) => start.task === task);
const outcomesOf = (task: string) =>
  events.filter(
    (event) => event.delivery.result.ok && event.delivery.result.message.id === ids[task],
  );

beforeAll(async () => {
  queue = bench.newQueue();
  broker = bench.openBroker();
  const tasks = Object.keys(PLANS).map((name) =>
    defineTask(
      {
        name,
        queue,
        retry: { on: [RetryableError] },
        defaultRetryDelay: 0.5,
      },
      (kwargs, ctx) => {
        record(name)(kwargs, ctx);
        if (name === 'inv.retried' && ctx.retries === 0) throw new RetryableError('store busy');
      },
    ),
  );
  const registry = createRegistry({ tasks, queues: [{ name: queue }] });
  invoker = faultyInvoker(registry, (functionName, attempt) => {
    const task = tasks.find(
      (item) => deployedFunctionName(registry, item.name, '') === functionName,
    );
    return PLANS[task?.name ?? '']?.[attempt] ?? null;
  });
  const messages = tasks.map((task) => task.createMessage());
  ids = Object.fromEntries(tasks.map((task, index) => [task.name, messages[index]?.id ?? '']));
  await broker.publish(messages);

  const controller = new AbortController();
  const logger = recordingLogger();
  const worker = runWorker(broker, registry, {
    queues: [queue],
    executor: lambdaExecutor({
      functionName: (task) => deployedFunctionName(registry, task, ''),
      client: invoker,
    }),
    waitMs: 250,
    signal: controller.signal,
    logger,
    onOutcome: (event) => events.push(event),
  }).catch((error: unknown) => {
    workerError = error;
  });
  const finished = () =>
    ['inv.throttled', 'inv.flaky', 'inv.retried', 'inv.ok'].every((task) =>
      outcomesOf(task).some((event) => event.outcome.kind === 'succeeded'),
    ) &&
    ['inv.unavailable', 'inv.timed_out', 'inv.mixed'].every((task) =>
      outcomesOf(task).some(
        (event) => event.outcome.kind === 'invoke-failed' && event.outcome.dead,
      ),
    );
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (Date.now() < deadline && !finished()) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  // A little longer, so an extra invoke or run would show up before the loop stops.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  controller.abort();
  await worker;
  workerWarnings = logger.warnings;
  stats = await broker.stats(queue);
});

afterAll(async () => {
  await bench.cleanup();
  await bench.close();
});

/** The dead-letter entry of a task's message. */
async function deadLetterOf(task: string) {
  const entries = await broker.deadLetters(queue, 100);
  return entries.filter((entry) => entry.id === ids[task]);
}

describe('invoke failures of the per-task function', () => {
  it('waits out a throttled invoke and runs the message once, counting nothing', async () => {
    // Assess
    const attempts = attemptsOf('inv.throttled');
    expect(attempts.map((attempt) => attempt.fault)).toEqual([
      ...(PLANS['inv.throttled'] ?? []),
      null,
    ]);
    expect(attempts.map((attempt) => attempt.retries[0])).toEqual([0, 0, 0, 0, 0, 0]);
    expect(attempts.map((attempt) => attempt.invokeFailures[0])).toEqual(Array(6).fill(null));
    expect(startsOf('inv.throttled')).toHaveLength(1);
    expect(outcomesOf('inv.throttled').map((event) => event.outcome.kind)).toEqual(['succeeded']);
    expect(await deadLetterOf('inv.throttled')).toEqual([]);
  });

  it('re-queues a message whose invoke failed without spending a retry, then dead-letters it as poison at the cap', async () => {
    // Assess
    const attempts = attemptsOf('inv.unavailable');
    expect(attempts).toHaveLength(CAP);
    expect(attempts.map((attempt) => attempt.retries[0])).toEqual([0, 0, 0, 0, 0]);
    expect(attempts.map((attempt) => attempt.invokeFailures[0])).toEqual([null, 1, 2, 3, 4]);
    expect(startsOf('inv.unavailable')).toEqual([]);
    const failures = outcomesOf('inv.unavailable').map((event) => event.outcome);
    expect(failures.map((outcome) => outcome.kind === 'invoke-failed' && outcome.failures)).toEqual(
      [1, 2, 3, 4, 5],
    );
    const [entry, ...others] = await deadLetterOf('inv.unavailable');
    expect(others).toEqual([]);
    expect(entry).toMatchObject({ reason: 'poison', task: 'inv.unavailable', retries: 0 });
    expect(entry?.detail).toContain(`could not be run ${CAP} times`);
    expect(entry?.detail).toContain('ServiceException');
    expect(entry?.errorType).toBe('InvokeError');
    expect(entry?.errorMessage).toContain('ServiceException');
  });

  it('keeps the failure count in the dead message, so a replay shows how it died', async () => {
    // Assess
    const [entry] = await deadLetterOf('inv.unavailable');
    const decoded = decodeRedisMessage(entry?.raw ?? '');
    expect(decoded.ok && decoded.message.extraHeaders[INVOKE_FAILURES_HEADER]).toBe(CAP - 1);
    expect(decoded.ok && decoded.message.retries).toBe(0);
  });

  it('treats a function timing out mid-task like any invoke failure: at least once, then poison', async () => {
    // Assess
    const attempts = attemptsOf('inv.timed_out');
    expect(attempts.map((attempt) => attempt.retries[0])).toEqual([0, 0, 0, 0, 0]);
    expect(attempts.map((attempt) => attempt.invokeFailures[0])).toEqual([null, 1, 2, 3, 4]);
    // The body started each time, since the function timed out after it began.
    expect(startsOf('inv.timed_out').map((start) => start.retries)).toEqual([0, 0, 0, 0, 0]);
    const [entry] = await deadLetterOf('inv.timed_out');
    expect(entry).toMatchObject({ reason: 'poison', retries: 0 });
    expect(entry?.detail).toContain('Sandbox.Timedout');
    expect(entry?.detail).toContain('Task timed out after 30.00 seconds');
  });

  it('names the last error in the poison reason, not an earlier one', async () => {
    // Assess
    const attempts = attemptsOf('inv.mixed');
    expect(attempts.map((attempt) => attempt.fault)).toEqual(PLANS['inv.mixed']);
    const [entry] = await deadLetterOf('inv.mixed');
    expect(entry).toMatchObject({ reason: 'poison', retries: 0, errorType: 'InvokeError' });
    expect(entry?.detail).toContain('Runtime.ExitError');
    expect(entry?.detail).not.toContain('Rate Exceeded');
    expect(entry?.detail).not.toContain('Sandbox.Timedout');
    expect(entry?.errorMessage).toContain('Runtime exited with error: signal: killed');
  });

  it('runs a message that succeeds after two failed invokes once, with retries 0', async () => {
    // Assess
    const attempts = attemptsOf('inv.flaky');
    expect(attempts.map((attempt) => attempt.fault)).toEqual(['throttle', 'unavailable', null]);
    // The throttled invoke counted nothing: the failed one is the first.
    expect(attempts.map((attempt) => attempt.invokeFailures[0])).toEqual([null, null, 1]);
    expect(attempts.map((attempt) => attempt.retries[0])).toEqual([0, 0, 0]);
    expect(startsOf('inv.flaky')).toEqual([
      { task: 'inv.flaky', id: ids['inv.flaky'], retries: 0 },
    ]);
    expect(outcomesOf('inv.flaky').map((event) => event.outcome.kind)).toEqual([
      'invoke-failed',
      'succeeded',
    ]);
    expect(await deadLetterOf('inv.flaky')).toEqual([]);
  });

  it('counts invoke failures per run: a task retry starts the count over', async () => {
    // Assess
    const attempts = attemptsOf('inv.retried');
    expect(attempts.map((attempt) => attempt.retries[0])).toEqual([0, 0, 0, 1, 1]);
    expect(attempts.map((attempt) => attempt.invokeFailures[0])).toEqual([null, 1, 2, null, 1]);
    expect(outcomesOf('inv.retried').map((event) => event.outcome.kind)).toEqual([
      'invoke-failed',
      'invoke-failed',
      'retry',
      'invoke-failed',
      'succeeded',
    ]);
    expect(await deadLetterOf('inv.retried')).toEqual([]);
  });

  it('runs a message whose function answers at once, once', () => {
    // Assess
    expect(attemptsOf('inv.ok')).toHaveLength(1);
    expect(startsOf('inv.ok')).toEqual([{ task: 'inv.ok', id: ids['inv.ok'], retries: 0 }]);
  });

  it('leaves nothing queued, parked or held, and the worker loop never failed', () => {
    // Assess
    expect(workerError).toBeNull();
    // Throttles are reported as they happen; nothing else is.
    expect(workerWarnings.length).toBeGreaterThan(0);
    expect(workerWarnings.filter((warning) => !/ is throttled; /.test(warning))).toEqual([]);
    expect(stats).toMatchObject({ ready: 0, unacked: 0, delayed: 0, deadLettered: 3 });
  });
});
