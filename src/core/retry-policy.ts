/**
 * The retry decision: one pure function from what a task run threw to what happens next.
 *
 * Precedence is Sentry's `@retry(on, exclude, ignore)` decorator, which Celery users know:
 *
 * 1. an explicit `ctx.retry()` retries (unless retries are exhausted);
 * 2. `ignore` → the task succeeds with no result;
 * 3. `exclude` → the error is re-raised: the task fails, no retry;
 * 4. `on` → retry after the backoff or the default retry delay;
 * 5. anything else fails without retry.
 *
 * Retries are exhausted when `retries >= maxRetries` (Celery: with `maxRetries` 3 the task runs
 * with retries 0, 1, 2, 3, then fails with the original error).
 */
import { MaxRetriesExceededError, RetrySignal, toError } from './errors.js';

/** An error class, matched with `instanceof` or by its `name`. */
export type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * What a retry list may hold: an error class, or an error `name` (errors rebuilt from a wire lose
 * their prototype, so the name is what is left to match).
 */
export type ErrorMatcher = ErrorClass | string;

/** Exponential backoff, as Celery's `retry_backoff`. */
export interface Backoff {
  /** Seconds for the first retry; doubles each retry. @defaultValue 1 */
  readonly factor: number;
  /** Upper bound in seconds (Celery's `retry_backoff_max`). @defaultValue 600 */
  readonly max: number;
  /** Full jitter: pick uniformly in `0..countdown` (Celery's `retry_jitter`). @defaultValue true */
  readonly jitter: boolean;
}

/** The part of a task's options that the retry decision reads. */
export interface RetryPolicy {
  /** Retries allowed; `null` retries forever. */
  readonly maxRetries: number | null;
  /** Seconds before a retry when nothing else says. */
  readonly defaultRetryDelay: number;
  /** Errors that cause a retry. */
  readonly on: readonly ErrorMatcher[];
  /** Errors re-raised without retry, even if `on` would match them. */
  readonly exclude: readonly ErrorMatcher[];
  /** Errors swallowed: the task succeeds with no result. */
  readonly ignore: readonly ErrorMatcher[];
  /** Backoff for errors matched by `on`; `null` uses `defaultRetryDelay`. */
  readonly backoff: Backoff | null;
}

/** What to do after a run threw. */
export type RetryDecision =
  | {
      readonly kind: 'retry';
      /** Delay before the next run, in milliseconds. */
      readonly delayMs: number;
      /** `explicit` for `ctx.retry()`, `retry-on` for an error matched by `on`. */
      readonly reason: 'explicit' | 'retry-on';
      /** The error behind the retry. */
      readonly error: Error;
    }
  | {
      readonly kind: 'fail';
      /** Why no retry happens. */
      readonly reason: 'excluded' | 'not-retryable' | 'max-retries-exceeded';
      /** The error the task fails with: the original one, also when retries ran out. */
      readonly error: Error;
    }
  | {
      readonly kind: 'ignore';
      /** The error that was ignored. */
      readonly error: Error;
    };

/** Inputs of {@link decideRetry}. */
export interface RetryInput {
  /** What the run threw (anything; non-errors are wrapped). */
  readonly thrown: unknown;
  /** The message's `retries`: 0 on the first run. */
  readonly retries: number;
  /** The task's policy. */
  readonly policy: RetryPolicy;
  /** Task name, for the "max retries exceeded" error. */
  readonly task: string;
  /** Current time, for `ctx.retry({ eta })`. @defaultValue now */
  readonly now?: Date;
  /** Random source in [0, 1), for jitter. @defaultValue Math.random */
  readonly random?: () => number;
}

/**
 * Decides what follows a failed run. Pure: same inputs, same decision.
 *
 * @example
 * const decision = decideRetry({ thrown: error, retries: 0, policy, task: 'ingest.save_event' });
 * if (decision.kind === 'retry') republishAfter(decision.delayMs);
 */
export function decideRetry(input: RetryInput): RetryDecision {
  const { thrown, retries, policy } = input;
  const error = toError(thrown);
  const exhausted = policy.maxRetries !== null && retries >= policy.maxRetries;

  if (error instanceof RetrySignal || error.name === 'RetrySignal') {
    const request = error instanceof RetrySignal ? error.request : {};
    if (exhausted) {
      const original =
        request.exc === undefined
          ? new MaxRetriesExceededError(input.task, retries)
          : toError(request.exc);
      return { kind: 'fail', reason: 'max-retries-exceeded', error: original };
    }
    const delayMs = explicitDelayMs(request, policy, input.now ?? new Date());
    return { kind: 'retry', delayMs, reason: 'explicit', error };
  }
  if (matchesAny(error, policy.ignore)) return { kind: 'ignore', error };
  if (matchesAny(error, policy.exclude)) return { kind: 'fail', reason: 'excluded', error };
  if (matchesAny(error, policy.on)) {
    if (exhausted) return { kind: 'fail', reason: 'max-retries-exceeded', error };
    const seconds = policy.backoff
      ? backoffSeconds(policy.backoff, retries, input.random ?? Math.random)
      : policy.defaultRetryDelay;
    return { kind: 'retry', delayMs: Math.round(seconds * 1000), reason: 'retry-on', error };
  }
  return { kind: 'fail', reason: 'not-retryable', error };
}

function explicitDelayMs(
  request: { countdown?: number; eta?: Date },
  policy: RetryPolicy,
  now: Date,
): number {
  if (request.eta) return Math.max(0, request.eta.getTime() - now.getTime());
  const seconds = request.countdown ?? policy.defaultRetryDelay;
  return Math.max(0, Math.round(seconds * 1000));
}

/**
 * Celery's `get_exponential_backoff_interval`: `min(max, factor · 2^retries)` seconds, then, with
 * jitter, a uniform pick in `0..countdown`.
 */
export function backoffSeconds(backoff: Backoff, retries: number, random: () => number): number {
  const countdown = Math.min(backoff.max, backoff.factor * 2 ** retries);
  return backoff.jitter ? random() * countdown : countdown;
}

/**
 * True when `error` matches one of `matchers`: an instance of a listed class, or an error whose
 * `name` (or whose class's name, anywhere up its prototype chain) equals a listed class's name or
 * a listed string.
 */
export function matchesAny(error: Error, matchers: readonly ErrorMatcher[]): boolean {
  if (matchers.length === 0) return false;
  const names = errorNames(error);
  return matchers.some((matcher) =>
    typeof matcher === 'string'
      ? names.has(matcher)
      : error instanceof matcher || names.has(matcher.name),
  );
}

function errorNames(error: Error): Set<string> {
  const names = new Set<string>([error.name]);
  for (
    let prototype: object | null = Object.getPrototypeOf(error);
    prototype && prototype !== Object.prototype;
    prototype = Object.getPrototypeOf(prototype)
  ) {
    const constructorName = (prototype as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof constructorName === 'string' && constructorName) names.add(constructorName);
  }
  return names;
}
