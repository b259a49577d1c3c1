import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TimeLimitExceededError } from '../../../src/core/errors.js';
import { createRegistry } from '../../../src/core/registry.js';
import { runMessage } from '../../../src/core/run-task.js';
import { settlementFor } from '../../../src/core/settlement.js';
import { defineTask } from '../../../src/core/task.js';
import { toTaskOutcome } from '../../../src/core/task-outcome.js';
import { FatalError, IgnoredError, RetryableError } from '../../helpers/factories.js';

const NOW = Date.parse('2026-01-01T00:00:00.000Z');
const now = () => NOW;

const runs: unknown[] = [];
const doWork = defineTask(
  {
    name: 'sentry.tasks.do_work',
    queue: 'q',
    kwargs: z.object({ mode: z.enum(['ok', 'retry', 'fatal', 'ignore', 'ask', 'unexpected']) }),
    retry: { on: [RetryableError], exclude: [FatalError], ignore: [IgnoredError] },
    defaultRetryDelay: 10,
  },
  (kwargs, ctx) => {
    runs.push({ kwargs, retries: ctx.retries });
    switch (kwargs.mode) {
      case 'retry':
        throw new RetryableError('flaky');
      case 'fatal':
        throw new FatalError('bug');
      case 'ignore':
        throw new IgnoredError('gone');
      case 'ask':
        return ctx.retry({ countdown: 5 });
      case 'unexpected':
        throw new RangeError('surprise');
      default:
        return { done: ctx.id };
    }
  },
);
const slow = defineTask(
  { name: 'slow', queue: 'q', timeLimit: 0.05, softTimeLimit: 0.02 },
  async (_, ctx) => {
    await new Promise((resolve) => setTimeout(resolve, 500));
    return ctx.signal.aborted;
  },
);
const softOnly = defineTask({ name: 'soft', queue: 'q', softTimeLimit: 0.02 }, async (_, ctx) => {
  await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
  return 'stopped at the soft limit';
});
const registry = createRegistry({ tasks: [doWork, slow, softOnly], queues: [{ name: 'q' }] });

const message = (mode: string, extra: Partial<ReturnType<typeof doWork.createMessage>> = {}) => ({
  ...doWork.createMessage({ kwargs: { mode } as never }, new Date(NOW)),
  ...extra,
});

describe('runMessage', () => {
  it('runs a task and reports its result', async () => {
    const sent = message('ok');

    const outcome = await runMessage(registry, sent, { now });

    expect(outcome).toMatchObject({ kind: 'succeeded', result: { done: sent.id } });
  });

  it('keeps unknown kwargs from newer producers', async () => {
    const sent = { ...message('ok'), kwargs: { mode: 'ok', added_later: 1 } };
    runs.length = 0;

    await runMessage(registry, sent, { now });

    expect(runs).toEqual([{ kwargs: { mode: 'ok', added_later: 1 }, retries: 0 }]);
  });

  it.each([
    ['an expired message', message('ok', { expires: new Date(NOW - 1) }), 'expired'],
    ['an unknown task', { ...message('ok'), task: 'sentry.tasks.nope' }, 'unknown-task'],
    [
      'kwargs failing the schema',
      { ...message('ok'), kwargs: { mode: 'dance' } },
      'invalid-arguments',
    ],
    ['an excluded error', message('fatal'), 'excluded'],
    ['an error on no list', message('unexpected'), 'not-retryable'],
    [
      'a retryable error after the last retry',
      message('retry', { retries: 3 }),
      'max-retries-exceeded',
    ],
  ])('dead-letters %s with that reason', async (_, sent, reason) => {
    const outcome = await runMessage(registry, sent, { now });

    expect(outcome.kind).toBe('dead');
    if (outcome.kind !== 'dead') return;
    expect(outcome.reason).toMatchObject({
      reason,
      task: sent.task,
      id: sent.id,
      retries: sent.retries,
    });
    expect(outcome.reason.detail).not.toBe('');
  });

  it('does not run an expired message', async () => {
    runs.length = 0;

    await runMessage(registry, message('ok', { expires: new Date(NOW - 1) }), { now });

    expect(runs).toEqual([]);
  });

  it('leaves a message whose eta is ahead for later, unrun', async () => {
    runs.length = 0;
    const eta = new Date(NOW + 60_000);

    const outcome = await runMessage(registry, message('ok', { eta }), { now });

    expect(outcome).toEqual({ kind: 'not-due', dueAt: eta });
    expect(runs).toEqual([]);
  });

  it('builds the retry message for a retryable error', async () => {
    const sent = message('retry', { retries: 1 });

    const outcome = await runMessage(registry, sent, { now });

    expect(outcome.kind).toBe('retry');
    if (outcome.kind !== 'retry') return;
    expect(outcome.dueAt.getTime()).toBe(NOW + 10_000);
    const settlement = settlementFor(toTaskOutcome(outcome), sent);
    expect(settlement.kind === 'retry-later' && settlement.message).toMatchObject({
      id: sent.id,
      retries: 2,
      parentId: sent.id,
      eta: outcome.dueAt,
    });
    expect(outcome.error).toBeInstanceOf(RetryableError);
  });

  it('retries after the countdown a task asks for with ctx.retry()', async () => {
    const outcome = await runMessage(registry, message('ask'), { now });

    expect(outcome).toMatchObject({ kind: 'retry', dueAt: new Date(NOW + 5_000) });
  });

  it('succeeds with no result for an ignored error', async () => {
    expect(await runMessage(registry, message('ignore'), { now })).toMatchObject({
      kind: 'ignored',
    });
  });

  it('stops a task at its hard time limit and fails it with TimeLimitExceeded', async () => {
    const sent = slow.createMessage();

    const outcome = await runMessage(registry, sent);

    expect(outcome.kind).toBe('dead');
    if (outcome.kind !== 'dead') return;
    expect(outcome.error).toBeInstanceOf(TimeLimitExceededError);
    expect(outcome.reason).toMatchObject({
      reason: 'not-retryable',
      errorType: 'TimeLimitExceeded',
    });
  });

  it('aborts the task signal at the soft time limit', async () => {
    expect(await runMessage(registry, softOnly.createMessage())).toMatchObject({
      kind: 'succeeded',
      result: 'stopped at the soft limit',
    });
  });

  it('leaves no listener on a long-lived outside signal once a run is over', async () => {
    const shutdown = new AbortController();

    for (let run = 0; run < 20; run++) {
      await runMessage(registry, message('ok'), { now, signal: shutdown.signal });
    }

    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
  });

  it('aborts the task signal and ends the run with TimeLimitExceeded at the host deadline', async () => {
    const hosted = defineTask({ name: 'hosted', queue: 'q' }, async (_, ctx) => {
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      return ctx.remainingTimeMs();
    });
    const local = createRegistry({ tasks: [hosted], queues: [{ name: 'q' }] });

    const outcome = await runMessage(local, hosted.createMessage(), { remainingTimeMs: () => 20 });

    expect(outcome).toMatchObject({ kind: 'dead', reason: { errorType: 'TimeLimitExceeded' } });
  });
});
