/**
 * The settlement of a message that could not be decoded: its queue's dead-letter store.
 */
import type { Settlement } from '../brokers/broker.js';
import { deadLetterForDecodeFailure } from '../core/dead-letter.js';
import type { DecodeFailure } from '../core/wire.js';

/** Dead-letters an undecodable message with the decoder's reason. */
export function settlementForInvalid(failure: DecodeFailure): Settlement {
  return { kind: 'dead-letter', reason: deadLetterForDecodeFailure(failure) };
}
