import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SoftTimeLimitExceeded, TimeLimitExceededError } from '../../../src/core/errors.js';
import type { TaskMessage, TimeLimit } from '../../../src/core/message.js';
import { createRegistry } from '../../../src/core/registry.js';
import { decideRetry } from '../../../src/core/retry-policy.js';
import { runMessage, throwIfAborted } from '../../../src/core/run-task.js';
import { defineTask } from '../../../src/core/task.js';
import { effectiveTimeLimits, runWithLimits } from '../../../src/core/time-limits.js';
import { makeRetryPolicy } from '../../helpers/factories.js';

const NEVER = new Promise<never>(() => {});

const seen: { reason?: unknown; remaining: number[] } = { remaining: [] };
const hangs = defineTask({ name: 'limits.hangs', queue: 'q' }, async (_, ctx) => {
  seen.remaining.push(ctx.remainingTimeMs());
  return NEVER;
});
const hangsRetried = defineTask(
  { name: 'limits.hangs_retried', queue: 'q', retry: { on: ['TimeLimitExceeded'] } },
  () => NEVER,
);
const cleansUp = defineTask({ name: 'limits.cleans_up', queue: 'q' }, async (_, ctx) => {
  await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
  seen.reason = ctx.signal.reason;
  try {
    throwIfAborted(ctx.signal);
    return 'not stopped';
  } catch (error) {
    if (error instanceof SoftTimeLimitExceeded) return 'cleaned up';
    throw error;
  }
});
const giveUpSoftly = defineTask(
  { name: 'limits.give_up', queue: 'q', retry: { on: [SoftTimeLimitExceeded] } },
  async (_, ctx) => {
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    throwIfAborted(ctx.signal);
  },
);
const sampler = defineTask(
  { name: 'limits.sampler', queue: 'q', timeLimit: 30 },
  async (_, ctx) => {
    seen.remaining.push(ctx.remainingTimeMs());
    await new Promise((resolve) => setTimeout(resolve, 500));
    seen.remaining.push(ctx.remainingTimeMs());
    return 'sampled';
  },
);
const registry = createRegistry({
  tasks: [hangs, hangsRetried, cleansUp, giveUpSoftly, sampler],
  queues: [{ name: 'q' }],
});

/** A message of `task` with `timelimit` as a Python producer would set it. */
function sentWith(task: { createMessage(): TaskMessage }, timeLimit: TimeLimit): TaskMessage {
  return { ...task.createMessage(), timeLimit };
}

/** Tracks when `promise` settles, in fake milliseconds from now. */
function timed<T>(promise: Promise<T>) {
  const started = Date.now();
  const state: { settledAt?: number } = {};
  const done = promise.then((value) => {
    state.settledAt = Date.now() - started;
    return value;
  });
  return { state, done };
}

describe('effectiveTimeLimits', () => {
  it.each([
    ['the message only', [30, 20], {}, [30, 'message'], [20, 'message']],
    [
      'the task only',
      [null, null],
      { timeLimit: 30, softTimeLimit: 20 },
      [30, 'task'],
      [20, 'task'],
    ],
    [
      'a message stricter than the task',
      [10, 5],
      { timeLimit: 30, softTimeLimit: 20 },
      [10, 'message'],
      [5, 'message'],
    ],
    [
      'the task over a looser message (a producer cannot stretch a run)',
      [60, 50],
      { timeLimit: 30, softTimeLimit: 20 },
      [30, 'task'],
      [20, 'task'],
    ],
    [
      'a message repeating the task',
      [30, 20],
      { timeLimit: 30, softTimeLimit: 20 },
      [30, 'task'],
      [20, 'task'],
    ],
    ['a soft limit only', [null, 5], {}, null, [5, 'message']],
    [
      'a hard limit from the message, a soft one from the task',
      [10, null],
      { softTimeLimit: 5 },
      [10, 'message'],
      [5, 'task'],
    ],
    [
      "a message's 0 (Python's falsy `or`)",
      [0, 0],
      { timeLimit: 30, softTimeLimit: 20 },
      [30, 'task'],
      [20, 'task'],
    ],
    ['none at all', [null, null], {}, null, null],
  ] as const)('takes %s', (_, message, task, hard, soft) => {
    const limits = effectiveTimeLimits(message, task);

    expect(limits).toEqual({
      hard: hard && { seconds: hard[0], source: hard[1] },
      soft: soft && { seconds: soft[0], source: soft[1] },
    });
  });
});

describe('runMessage under time limits', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    seen.reason = undefined;
    seen.remaining = [];
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('ends a task that never settles at its message hard limit, not retried', async () => {
    const { state, done } = timed(runMessage(registry, sentWith(hangs, [1, null])));

    await vi.advanceTimersByTimeAsync(999);
    const settledEarly = state.settledAt !== undefined;
    await vi.advanceTimersByTimeAsync(1);
    const outcome = await done;

    expect(settledEarly).toBe(false);
    expect(state.settledAt).toBe(1000);
    expect(outcome).toMatchObject({
      kind: 'dead',
      durationMs: 1000,
      reason: {
        reason: 'not-retryable',
        errorType: 'TimeLimitExceeded',
        errorMessage: 'task limits.hangs exceeded the time limit of 1 s set by its message',
      },
    });
    expect(outcome.kind === 'dead' && outcome.error).toBeInstanceOf(TimeLimitExceededError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("retries a task that ran past its hard limit when its retry.on names 'TimeLimitExceeded'", async () => {
    const { done } = timed(runMessage(registry, sentWith(hangsRetried, [1, null])));

    await vi.advanceTimersByTimeAsync(1000);

    expect(await done).toMatchObject({ kind: 'retry', error: { name: 'TimeLimitExceeded' } });
  });

  it('aborts the signal with SoftTimeLimitExceeded and keeps what a task returns after it', async () => {
    const { state, done } = timed(runMessage(registry, sentWith(cleansUp, [null, 2])));

    await vi.advanceTimersByTimeAsync(2000);

    expect(state.settledAt).toBe(2000);
    expect(await done).toMatchObject({ kind: 'succeeded', result: 'cleaned up' });
    expect(seen.reason).toBeInstanceOf(SoftTimeLimitExceeded);
    expect(seen.reason).toMatchObject({
      name: 'SoftTimeLimitExceeded',
      message: 'task limits.cleans_up exceeded the soft time limit of 2 s set by its message',
    });
  });

  it('puts an uncaught SoftTimeLimitExceeded through the retry decision', async () => {
    const { done } = timed(runMessage(registry, sentWith(giveUpSoftly, [null, 1])));

    await vi.advanceTimersByTimeAsync(1000);

    expect(await done).toMatchObject({ kind: 'retry', error: { name: 'SoftTimeLimitExceeded' } });
  });

  it("caps the hard limit with the host's remaining time and says so", async () => {
    const hostDeadline = Date.now() + 500;
    const { state, done } = timed(
      runMessage(registry, sentWith(hangs, [10, null]), {
        remainingTimeMs: () => hostDeadline - Date.now(),
      }),
    );

    await vi.advanceTimersByTimeAsync(500);

    expect(state.settledAt).toBe(500);
    expect(seen.remaining).toEqual([500]);
    expect(await done).toMatchObject({
      kind: 'dead',
      reason: {
        errorType: 'TimeLimitExceeded',
        errorMessage: "task limits.hangs exceeded the function's remaining time of 0.5 s",
      },
    });
  });

  it('tells the task the time left before its effective hard limit', async () => {
    const { done } = timed(runMessage(registry, sentWith(sampler, [2, null])));

    await vi.advanceTimersByTimeAsync(500);

    expect(await done).toMatchObject({ kind: 'succeeded', result: 'sampled' });
    expect(seen.remaining).toEqual([2000, 1500]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('runWithLimits', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('lets a task rejecting after its hard limit go without an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const listener = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listener);
    const limits = effectiveTimeLimits([1, null], {});
    const late = () =>
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('too late')), 2000));

    try {
      const running = runWithLimits('limits.late', limits, {}, late);
      const outcome = running.catch((error: unknown) => error);
      await vi.advanceTimersByTimeAsync(2000);
      // unhandledRejection is emitted after the microtask queue drains: give it real turns.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));

      expect(await outcome).toBeInstanceOf(TimeLimitExceededError);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });

  it('aborts the task signal with the error it ends the run with', async () => {
    let signal: AbortSignal | undefined;
    const running = runWithLimits('limits.watch', effectiveTimeLimits([1, null], {}), {}, (s) => {
      signal = s;
      return NEVER;
    });
    const outcome = running.catch((error: unknown) => error);

    await vi.advanceTimersByTimeAsync(1000);

    expect(signal?.reason).toBe(await outcome);
    expect(signal?.reason).toMatchObject({
      name: 'TimeLimitExceeded',
      seconds: 1,
      source: 'message',
    });
  });
});

describe('retry decision on time-limit errors', () => {
  it.each([
    [
      'TimeLimitExceeded by name',
      new TimeLimitExceededError('t', 1),
      ['TimeLimitExceeded'],
      'retry',
    ],
    [
      'TimeLimitExceeded by class',
      new TimeLimitExceededError('t', 1),
      [TimeLimitExceededError],
      'retry',
    ],
    [
      'SoftTimeLimitExceeded by name',
      new SoftTimeLimitExceeded('t', 1),
      ['SoftTimeLimitExceeded'],
      'retry',
    ],
    [
      'SoftTimeLimitExceeded by class',
      new SoftTimeLimitExceeded('t', 1),
      [SoftTimeLimitExceeded],
      'retry',
    ],
    ['TimeLimitExceeded on no list', new TimeLimitExceededError('t', 1), [], 'fail'],
  ] as const)('matches %s', (_, thrown, on, kind) => {
    const decision = decideRetry({
      thrown,
      retries: 0,
      policy: makeRetryPolicy({ on }),
      task: 't',
    });

    expect(decision.kind).toBe(kind);
  });
});
