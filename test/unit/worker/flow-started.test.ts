/**
 * The flow stores STARTED (Celery's `track_started`) before an execution begins and waits for
 * it, for the tasks that track it; for the others it makes no backend call at all.
 */
import { describe, expect, it } from 'vitest';
import type { TaskMessage } from '../../../src/core/message.js';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import type { WorkerEvent } from '../../../src/worker/events.js';
import type { TaskExecutor } from '../../../src/worker/executor.js';
import { DispatchFlow, type FlowBackend } from '../../../src/worker/flow.js';
import { deliveryOf, fakeBroker, SUCCEEDED } from '../../helpers/lambda.js';
import { recordingLogger } from '../../helpers/redis.js';

const tracked = defineTask({ name: 'app.tracked', queue: 'q', trackStarted: true }, () => null);
const plain = defineTask({ name: 'app.plain', queue: 'q' }, () => null);
const optedOut = defineTask({ name: 'app.out', queue: 'q', trackStarted: false }, () => null);
const quiet = defineTask(
  { name: 'app.quiet', queue: 'q', trackStarted: true, ignoreResult: true },
  () => null,
);
const registry = createRegistry({
  tasks: [tracked, plain, optedOut, quiet],
  queues: [{ name: 'q' }],
});

/** A backend that records STARTED calls in `log`, and lets the test decide when they end. */
function startedBackend(log: string[], options: { trackStarted?: boolean; fail?: Error } = {}) {
  const calls: (readonly TaskMessage[])[] = [];
  const pending: (() => void)[] = [];
  const backend: FlowBackend = {
    config: { trackStarted: options.trackStarted ?? false },
    async setChordSize() {},
    markStarted(messages) {
      calls.push(messages);
      log.push(`started ${messages.map((m) => m.task).join(',')}`);
      if (options.fail) return Promise.reject(options.fail);
      return new Promise<void>((resolve) => {
        pending.push(() => {
          log.push('started stored');
          resolve();
        });
      });
    },
  };
  const release = () => {
    for (const end of pending.splice(0)) end();
  };
  return { backend, calls, release };
}

function loggingExecutor(log: string[], batchSize = 1): TaskExecutor {
  return {
    batchSize,
    async execute(task, messages) {
      log.push(`execute ${task} x${messages.length}`);
      return messages.map(() => SUCCEEDED);
    },
  };
}

function flowWith(backend: FlowBackend, executor: TaskExecutor) {
  const broker = fakeBroker();
  const events: WorkerEvent[] = [];
  const flow = new DispatchFlow(broker, registry, executor, {
    slots: 10,
    readAhead: 0,
    poisonCap: 5,
    now: Date.now,
    onOutcome: (event) => events.push(event),
    logger: recordingLogger(),
    resultBackend: backend,
  });
  return { flow, broker, events };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('DispatchFlow and STARTED', () => {
  it('stores STARTED and waits for it before the execution begins', async () => {
    // Prepare
    const log: string[] = [];
    const started = startedBackend(log);
    const { flow } = flowWith(started.backend, loggingExecutor(log));

    // Act
    flow.accept([deliveryOf(tracked.createMessage())]);
    await tick();
    const beforeStored = [...log];
    started.release();
    await flow.idle();

    // Assess
    expect(beforeStored).toEqual(['started app.tracked']);
    expect(log).toEqual(['started app.tracked', 'started stored', 'execute app.tracked x1']);
  });

  it('makes no backend call for tasks that do not track it', async () => {
    // Prepare
    const log: string[] = [];
    const started = startedBackend(log);
    const { flow, events } = flowWith(started.backend, loggingExecutor(log));

    // Act
    flow.accept([deliveryOf(plain.createMessage()), deliveryOf(optedOut.createMessage())]);
    await flow.idle();

    // Assess
    expect(started.calls).toEqual([]);
    expect(events.map((event) => event.outcome.kind)).toEqual(['succeeded', 'succeeded']);
  });

  it.each([
    ['a task that sets none follows the default', plain, true],
    ['a task that opts out', optedOut, false],
    ['a task whose result is ignored', quiet, false],
  ])('with the app default on, %s', async (_, task, expected) => {
    // Prepare
    const log: string[] = [];
    const started = startedBackend(log, { trackStarted: true });
    const { flow } = flowWith(started.backend, loggingExecutor(log));

    // Act
    flow.accept([deliveryOf(task.createMessage())]);
    await tick();
    started.release();
    await flow.idle();

    // Assess
    expect(started.calls.length > 0).toBe(expected);
  });

  it('skips a call that ignores its result', async () => {
    // Prepare
    const log: string[] = [];
    const started = startedBackend(log);
    const { flow } = flowWith(started.backend, loggingExecutor(log));

    // Act
    flow.accept([deliveryOf(tracked.createMessage({ ignoreResult: true }))]);
    await flow.idle();

    // Assess
    expect(started.calls).toEqual([]);
    expect(log).toEqual(['execute app.tracked x1']);
  });

  it('stores the STARTED states of one batched execution in one call', async () => {
    // Prepare
    const log: string[] = [];
    const started = startedBackend(log);
    const { flow } = flowWith(started.backend, loggingExecutor(log, 3));
    const sent = [1, 2, 3].map(() => deliveryOf(tracked.createMessage()));

    // Act
    flow.accept(sent);
    await tick();
    started.release();
    await flow.idle();

    // Assess
    expect(started.calls).toHaveLength(1);
    expect(started.calls[0]?.map((message) => message.id)).toEqual(
      sent.map((delivery) => (delivery.result.ok ? delivery.result.message.id : null)),
    );
    expect(log.at(-1)).toBe('execute app.tracked x3');
  });

  it('re-queues the execution unrun when STARTED cannot be stored', async () => {
    // Prepare
    const log: string[] = [];
    const started = startedBackend(log, { fail: new Error('backend down') });
    const { flow, broker, events } = flowWith(started.backend, loggingExecutor(log));

    // Act
    flow.accept([deliveryOf(tracked.createMessage())]);
    await flow.idle();

    // Assess
    expect(log).toEqual(['started app.tracked']);
    expect(broker.settled().map((item) => item.settlement.kind)).toEqual(['retry-later']);
    expect(events[0]?.outcome).toMatchObject({ kind: 'invoke-failed', failures: 1 });
    expect(events[0]?.outcome).toMatchObject({
      detail: 'Error: STARTED could not be stored: backend down',
    });
  });
});
