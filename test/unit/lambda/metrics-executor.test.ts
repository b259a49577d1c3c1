import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTaskMessage, type TaskMessage } from '../../../src/core/message.js';
import type { TaskOutcome } from '../../../src/core/task-outcome.js';
import { createMetrics } from '../../../src/lambda/metrics.js';
import { DISPATCH_METRICS, instrumentExecutor } from '../../../src/lambda/metrics-executor.js';
import { type TaskExecutor, ThrottledError } from '../../../src/worker/executor.js';
import { captureOutput, emfBlobs, expectValidEmf } from '../../helpers/observability.js';

const messagesOf = (count: number, queue = 'q'): TaskMessage[] =>
  Array.from({ length: count }, () => createTaskMessage({ task: 't', queue }));

/** Answers each call as scripted: outcomes, or an error to throw, after `gate` resolves. */
function scriptedExecutor(script: (Error | null)[], gate: Promise<void>): TaskExecutor {
  return {
    batchSize: 10,
    async execute(_task, messages) {
      const next = script.shift() ?? null;
      await gate;
      if (next) throw next;
      return messages.map((): TaskOutcome => ({ kind: 'succeeded', durationMs: 1 }));
    },
  };
}

describe('instrumentExecutor', () => {
  let output: ReturnType<typeof captureOutput>;
  beforeEach(() => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    output = captureOutput();
  });
  afterEach(() => {
    output.restore();
    vi.unstubAllEnvs();
  });

  it('counts invokes, failures, throttles, messages per invoke and the peak in flight', async () => {
    // Prepare
    let open = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const failure = new Error('function crashed');
    const throttle = new ThrottledError('TooManyRequestsException');
    const executor = instrumentExecutor(
      scriptedExecutor([null, failure, throttle], gate),
      createMetrics(),
    );

    // Act: three invokes in flight at once
    const calls = [
      executor.execute('t', messagesOf(10)),
      executor.execute('t', messagesOf(3)),
      executor.execute('t', messagesOf(1)),
    ].map((call) => call.catch((error: unknown) => error));
    open();
    const results = await Promise.all(calls);
    executor.flush();

    // Assess
    expect(executor.batchSize).toBe(10);
    expect(results[1]).toBe(failure);
    expect(results[2]).toBe(throttle);
    const [blob, ...rest] = emfBlobs(output.jsonLines());
    expect(rest).toEqual([]);
    expectValidEmf(blob as Record<string, unknown>);
    expect(blob).toMatchObject({
      task: 't',
      queue: 'q',
      [DISPATCH_METRICS.invokes]: 3,
      [DISPATCH_METRICS.invokeFailures]: 1,
      [DISPATCH_METRICS.throttles]: 1,
      [DISPATCH_METRICS.messagesPerInvoke]: [10, 3, 1],
      [DISPATCH_METRICS.inFlight]: 3,
    });
  });

  it('publishes nothing when nothing was invoked', () => {
    instrumentExecutor(scriptedExecutor([], Promise.resolve()), createMetrics()).flush();
    expect(emfBlobs(output.jsonLines())).toEqual([]);
  });
});
