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

/** The dead-letter reason for a message that failed to decode. */
export function deadLetterForDecodeFailure(failure: DecodeFailure): DeadLetterReason {
  return {
    reason: DEAD_LETTER_REASONS.invalidMessage,
    detail: failure.error.message,
    task: failure.task,
    id: failure.id,
    retries: null,
    errorType: failure.error.name,
    errorMessage: failure.error.message,
  };
}
