/**
 * Test factories with overridable defaults.
 */
import type { RetryPolicy } from '../../src/core/retry-policy.js';

/** A retry policy with Celery's defaults and empty lists; override what the test is about. */
export function makeRetryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  return {
    maxRetries: 3,
    defaultRetryDelay: 180,
    on: [],
    exclude: [],
    ignore: [],
    backoff: null,
    ...overrides,
  };
}

/** Error classes named like the ones in Sentry's and the interop app's retry lists. */
export class RetryableError extends Error {
  override name = 'RetryableError';
}

/** An error on the exclude list in the tests. */
export class FatalError extends Error {
  override name = 'FatalError';
}

/** An error on the ignore list in the tests. */
export class IgnoredError extends Error {
  override name = 'IgnoredError';
}

/** A subclass, to show that `instanceof` matching covers subclasses. */
export class ConnectionResetError extends RetryableError {
  override name = 'ConnectionResetError';
}

/**
 * An error as it looks once rebuilt from a wire (a Lambda error payload, a dead-letter
 * reason): the right `name`, but a plain `Error` prototype.
 */
export function rebuiltError(name: string, message = 'rebuilt'): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}
