/**
 * Assertions on decode results, so a test reads "decoded message has …" instead of narrowing the
 * result union by hand.
 */
import { expect } from 'vitest';
import { InvalidMessageError } from '../../src/core/errors.js';
import type { TaskMessage } from '../../src/core/message.js';
import type { DecodeFailure, DecodeResult } from '../../src/core/wire.js';

/** Asserts the decode succeeded and returns its message; on failure the test shows the reason. */
export function expectDecoded(result: DecodeResult): TaskMessage {
  if (!result.ok) expect.fail(`expected a decoded message, got: ${result.error.message}`);
  return result.message;
}

/** Asserts the decode failed with a typed {@link InvalidMessageError} and returns the failure. */
export function expectDecodeFailure(result: DecodeResult): DecodeFailure {
  if (result.ok) expect.fail(`expected a decode failure, got task ${result.message.task}`);
  expect(result.error).toBeInstanceOf(InvalidMessageError);
  return result;
}
