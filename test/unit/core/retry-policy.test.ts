import { describe, expect, it } from 'vitest';
import { MaxRetriesExceededError, RetrySignal } from '../../../src/core/errors.js';
import { backoffSeconds, decideRetry, type RetryPolicy } from '../../../src/core/retry-policy.js';
import {
  ConnectionResetError,
  FatalError,
  IgnoredError,
  makeRetryPolicy,
  RetryableError,
  rebuiltError,
} from '../../helpers/factories.js';

const SENTRY_POLICY: RetryPolicy = makeRetryPolicy({
  on: [RetryableError],
  exclude: [FatalError],
  ignore: [IgnoredError],
});

const decide = (thrown: unknown, retries = 0, policy = SENTRY_POLICY) =>
  decideRetry({ thrown, retries, policy, task: 'sentry.tasks.do_work', now: new Date(0) });

describe('decideRetry precedence (ignore → exclude → on → fail)', () => {
  it.each([
    ['an error on the ignore list', new IgnoredError('gone'), 'ignore', undefined],
    ['an error on the exclude list', new FatalError('bug'), 'fail', 'excluded'],
    ['an error on the on list', new RetryableError('flaky'), 'retry', 'retry-on'],
    [
      'a subclass of an error on the on list',
      new ConnectionResetError('reset'),
      'retry',
      'retry-on',
    ],
    ['an error on no list', new RangeError('unexpected'), 'fail', 'not-retryable'],
    [
      'an error rebuilt from a wire, matched by name',
      rebuiltError('RetryableError'),
      'retry',
      'retry-on',
    ],
    ['an excluded error rebuilt from a wire', rebuiltError('FatalError'), 'fail', 'excluded'],
    ['a thrown string', 'boom', 'fail', 'not-retryable'],
  ])('decides for %s', (_, thrown, kind, reason) => {
    const decision = decide(thrown);

    expect(decision.kind).toBe(kind);
    if (decision.kind !== 'ignore') expect(decision.reason).toBe(reason);
    expect(decision.error).toBeInstanceOf(Error);
  });

  it('ignores before excluding when an error is on both lists', () => {
    const policy = makeRetryPolicy({
      ignore: [FatalError],
      exclude: [FatalError],
      on: [FatalError],
    });

    expect(decide(new FatalError('x'), 0, policy).kind).toBe('ignore');
  });

  it('excludes before retrying when an error is on both exclude and on', () => {
    const policy = makeRetryPolicy({ exclude: [ConnectionResetError], on: [RetryableError] });

    const decision = decide(new ConnectionResetError('x'), 0, policy);

    expect(decision).toMatchObject({ kind: 'fail', reason: 'excluded' });
  });

  it('matches string entries against the error name and its class names', () => {
    const policy = makeRetryPolicy({ on: ['RetryableError'] });

    expect(decide(new ConnectionResetError('x'), 0, policy).kind).toBe('retry');
    expect(decide(rebuiltError('RetryableError'), 0, policy).kind).toBe('retry');
    expect(decide(new FatalError('x'), 0, policy).kind).toBe('fail');
  });

  it('fails without retry when the policy lists nothing', () => {
    expect(decide(new RetryableError('x'), 0, makeRetryPolicy())).toMatchObject({
      kind: 'fail',
      reason: 'not-retryable',
    });
  });

  it('keeps the thrown error itself as the failure', () => {
    const error = new FatalError('bug');

    expect(decide(error).error).toBe(error);
  });
});

describe("decideRetry follows Celery's observed retry sequence", () => {
  it('retries at retries 0, 1, 2 and fails at 3 with the original error class', () => {
    const error = new RetryableError('flaky');

    const decisions = [0, 1, 2, 3].map((retries) => decide(error, retries));

    expect(decisions.map((decision) => decision.kind)).toEqual(['retry', 'retry', 'retry', 'fail']);
    expect(decisions[3]).toMatchObject({ reason: 'max-retries-exceeded', error });
    expect(decisions[3]?.error).toBeInstanceOf(RetryableError);
  });

  it('waits the default retry delay (180 s) without backoff', () => {
    expect(decide(new RetryableError('x'))).toMatchObject({ kind: 'retry', delayMs: 180_000 });
  });

  it('retries forever when maxRetries is null', () => {
    const policy = makeRetryPolicy({ on: [RetryableError], maxRetries: null });

    expect(decide(new RetryableError('x'), 10_000, policy).kind).toBe('retry');
  });

  it('never retries when maxRetries is 0', () => {
    const policy = makeRetryPolicy({ on: [RetryableError], maxRetries: 0 });

    expect(decide(new RetryableError('x'), 0, policy)).toMatchObject({
      kind: 'fail',
      reason: 'max-retries-exceeded',
    });
  });
});

describe('decideRetry for an explicit ctx.retry()', () => {
  it.each([
    ['no options: the default retry delay', {}, 180_000],
    ['a countdown of 5 s', { countdown: 5 }, 5_000],
    ['an eta 42 s ahead', { eta: new Date(42_000) }, 42_000],
    ['an eta in the past: at once', { eta: new Date(-1_000) }, 0],
    ['an eta wins over a countdown', { eta: new Date(7_000), countdown: 99 }, 7_000],
  ])('retries after %s', (_, request, delayMs) => {
    expect(decide(new RetrySignal(request))).toMatchObject({
      kind: 'retry',
      reason: 'explicit',
      delayMs,
    });
  });

  it('retries even when the policy lists nothing', () => {
    expect(decide(new RetrySignal(), 0, makeRetryPolicy()).kind).toBe('retry');
  });

  it('fails with the error passed as exc once retries are exhausted', () => {
    const exc = new RangeError('original');

    const decision = decide(new RetrySignal({ exc }), 3);

    expect(decision).toMatchObject({ kind: 'fail', reason: 'max-retries-exceeded', error: exc });
  });

  it('fails with MaxRetriesExceededError when exhausted without exc', () => {
    const decision = decide(new RetrySignal(), 3);

    expect(decision.kind).toBe('fail');
    expect(decision.error).toBeInstanceOf(MaxRetriesExceededError);
    expect(decision.error.message).toContain('sentry.tasks.do_work');
  });

  it('recognises a retry signal rebuilt from a wire by its name', () => {
    expect(decide(rebuiltError('RetrySignal')).kind).toBe('retry');
  });
});

describe("backoff like Celery's retry_backoff", () => {
  const backoff = { factor: 1, max: 600, jitter: false };

  it.each([
    [0, 1],
    [1, 2],
    [2, 4],
    [5, 32],
    [9, 512],
    [10, 600],
    [30, 600],
  ])('waits factor · 2^retries capped at 600 s (retries %i → %i s)', (retries, seconds) => {
    expect(backoffSeconds(backoff, retries, () => 0.5)).toBe(seconds);
  });

  it('scales with the factor', () => {
    expect(backoffSeconds({ ...backoff, factor: 600 }, 0, () => 0.5)).toBe(600);
    expect(backoffSeconds({ ...backoff, factor: 3 }, 2, () => 0.5)).toBe(12);
  });

  it.each([
    [0, 0],
    [0.5, 4],
    [0.999, 7.992],
  ])('with full jitter picks uniformly in 0..countdown (random %f → %f s)', (random, seconds) => {
    expect(backoffSeconds({ ...backoff, jitter: true }, 3, () => random)).toBeCloseTo(seconds);
  });

  it('is used for errors matched by on, in milliseconds', () => {
    const policy = makeRetryPolicy({
      on: [RetryableError],
      backoff: { factor: 2, max: 600, jitter: true },
    });

    const decision = decideRetry({
      thrown: new RetryableError('x'),
      retries: 2,
      policy,
      task: 't',
      random: () => 0.25,
    });

    expect(decision).toMatchObject({ kind: 'retry', delayMs: 2_000 });
  });

  it('is not used for an explicit ctx.retry() (Celery uses default_retry_delay there)', () => {
    const policy = makeRetryPolicy({ backoff: { factor: 1, max: 600, jitter: false } });

    expect(decide(new RetrySignal(), 2, policy)).toMatchObject({ delayMs: 180_000 });
  });
});
