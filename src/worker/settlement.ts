/**
 * From what happened to a message to how the broker settles it.
 */

import type { Settlement } from '../brokers/broker.js';
import { deadLetterForDecodeFailure } from '../core/dead-letter.js';
import type { TaskMessage } from '../core/message.js';
import type { RunOutcome } from '../core/run-task.js';
import type { DecodeFailure } from '../core/wire.js';

/**
 * The settlement of a message that ran (or was not due): done for success and ignore, a delayed
 * re-publish for a retry or a message not yet due, the dead-letter store for the rest.
 *
 * @param outcome - what {@link runMessage} returned
 * @param message - the message that was run
 */
export function settlementFor(outcome: RunOutcome, message: TaskMessage): Settlement {
  switch (outcome.kind) {
    case 'succeeded':
    case 'ignored':
      return { kind: 'done' };
    case 'retry':
      return { kind: 'retry-later', message: outcome.message, dueAt: outcome.dueAt };
    case 'not-due':
      return { kind: 'retry-later', message, dueAt: outcome.dueAt };
    case 'dead':
      return { kind: 'dead-letter', reason: outcome.reason };
  }
}

/** The settlement of a message that could not be decoded: its queue's dead-letter store. */
export function settlementForInvalid(failure: DecodeFailure): Settlement {
  return { kind: 'dead-letter', reason: deadLetterForDecodeFailure(failure) };
}
