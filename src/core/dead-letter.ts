/**
 * Dead letters: why a message was taken out of circulation. Every message that cannot or must not
 * run again lands in its queue's dead-letter store with one of these reasons; nothing is dropped
 * silently.
 */
import type { DecodeFailure } from './wire.js';

/** Why a message was dead-lettered. */
export const DEAD_LETTER_REASONS = {
  /** `expires` passed before it could run. */
  expired: 'expired',
  /** No registered task has its name. */
  unknownTask: 'unknown-task',
  /** It is not a decodable Celery message. */
  invalidMessage: 'invalid-message',
  /** Its arguments fail the task's schema. */
  invalidArguments: 'invalid-arguments',
  /** The task failed with an error on its `exclude` list. */
  excluded: 'excluded',
  /** The task failed with an error on no retry list. */
  notRetryable: 'not-retryable',
  /** The task failed after its last allowed retry. */
  maxRetriesExceeded: 'max-retries-exceeded',
  /** Delivery kept failing outside the task (invoke errors, crashes): the poison cap was hit. */
  poison: 'poison',
  /**
   * Its workflow (`callbacks`, `errbacks`, `chain`, `chord`) cannot be honoured here: a signature
   * that does not parse or cannot be expanded (a `subtask_type` such as `chunks` or `xmap`), or
   * a chord without a result backend. Refused before running, so a workflow is never half-run.
   */
  unsupportedWorkflow: 'unsupported-workflow',
} as const;

/** One of {@link DEAD_LETTER_REASONS}. */
export type DeadLetterReasonCode = (typeof DEAD_LETTER_REASONS)[keyof typeof DEAD_LETTER_REASONS];

/** What is recorded with a dead message. */
export interface DeadLetterReason {
  readonly reason: DeadLetterReasonCode;
  /** One human sentence: what went wrong. */
  readonly detail: string;
  /** Task name, when known. */
  readonly task: string | null;
  /** Task id, when known. */
  readonly id: string | null;
  /** The message's `retries` when it died, when known. */
  readonly retries: number | null;
  /** Class name of the error, when an error caused it. */
  readonly errorType?: string;
  /** The error's message, when an error caused it. */
  readonly errorMessage?: string;
}

/** What a dead-letter record says the message was: as much of its identity as is known. */
export interface DeadLetterSubject {
  readonly task: string | null;
  readonly id: string | null;
  readonly retries: number | null;
}

/**
 * The one builder of dead-letter records: every place that takes a message out of circulation
 * (admission, a failed run, the poison cap, a broker's own refusals) describes it this way.
 *
 * @param subject - the message, or what could be read of it
 * @param code - why, one of {@link DEAD_LETTER_REASONS}' keys
 * @param detail - one human sentence
 * @param error - the error that caused it, if any (its name and message are recorded)
 */
export function deadLetterReason(
  subject: DeadLetterSubject,
  code: keyof typeof DEAD_LETTER_REASONS,
  detail: string,
  error?: Error,
): DeadLetterReason {
  return {
    reason: DEAD_LETTER_REASONS[code],
    detail,
    task: subject.task,
    id: subject.id,
    retries: subject.retries,
    ...(error ? { errorType: error.name, errorMessage: error.message } : {}),
  };
}

/** The dead-letter reason for a message that failed to decode. */
export function deadLetterForDecodeFailure(failure: DecodeFailure): DeadLetterReason {
  const subject = { task: failure.task, id: failure.id, retries: null };
  return deadLetterReason(subject, 'invalidMessage', failure.error.message, failure.error);
}
