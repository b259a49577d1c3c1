/**
 * Which Celery events a settled message is announced with: the one place where our outcomes
 * (`DispatchOutcome`) become Celery's task states, so the local worker, the Lambda poller and the
 * Amazon MQ dispatcher tell Flower the same story.
 *
 * A task that ran and failed for good is `task-failed` (Celery acks a failed task; that we also
 * keep it in a dead-letter queue is ours). What never ran is `task-rejected` (an unsupported
 * workflow), `task-revoked` (expired) or Celery's `NotRegistered` failure. A whole execution that
 * failed (invoke error, crash) and is re-queued without spending a retry is `task-retried`; at
 * the poison cap, `task-failed`. A message put back unrun at a deadline is `task-rejected` with
 * `requeue: true`. Left out: undecodable messages (no task id to name) and messages not yet due
 * (re-parked, announced when they run).
 */
import {
  type EventDraft,
  taskFailed,
  taskNotRegistered,
  taskRejected,
  taskRetried,
  taskRevoked,
  taskSucceeded,
} from '../core/celery-events.js';
import type { DeadLetterReason } from '../core/dead-letter.js';
import type { TaskMessage } from '../core/message.js';
import type { DispatchOutcome } from './events.js';

/**
 * The events that end `message`'s attempt with `outcome` (none for `invalid` and `not-due`).
 * `result` of a success is its JSON value when the executor carried it, else `None`.
 */
export function outcomeEvents(message: TaskMessage, outcome: DispatchOutcome): EventDraft[] {
  const id = message.id;
  switch (outcome.kind) {
    case 'succeeded':
      return [taskSucceeded(id, outcome.result ?? null, outcome.durationMs / 1000)];
    // Settled done: a retry.ignore error counts as success, as does a run already recorded.
    case 'ignored':
    case 'duplicate':
      return [taskSucceeded(id, null, outcome.durationMs / 1000)];
    case 'retry':
      return [taskRetried(id, wireError(outcome.errorType, outcome.errorMessage))];
    case 'dead':
      return [deadEvent(id, outcome.reason)];
    case 'invoke-failed':
      return [
        outcome.dead
          ? taskFailed(id, wireError('WorkerLostError', outcome.detail))
          : taskRetried(id, wireError('WorkerLostError', outcome.detail)),
      ];
    case 'released':
      return [taskRejected(id, true)];
    case 'invalid':
    case 'not-due':
      return [];
  }
}

/** Whether a message with this admission outcome is announced at all (`task-received`). */
export function announcesReceipt(outcome: DispatchOutcome | undefined): boolean {
  return outcome?.kind !== 'not-due' && outcome?.kind !== 'invalid';
}

function deadEvent(id: string, reason: DeadLetterReason): EventDraft {
  switch (reason.reason) {
    case 'expired':
      return taskRevoked(id, { expired: true });
    case 'unknown-task':
      return taskNotRegistered(id, reason.task ?? '');
    case 'unsupported-workflow':
    case 'invalid-message':
      return taskRejected(id, false);
    default:
      return taskFailed(
        id,
        wireError(reason.errorType ?? 'Reject', reason.errorMessage ?? reason.detail),
      );
  }
}

/**
 * An error as it crossed a wire (name and message only): its repr is `Name('message')`, and its
 * traceback Python's last line, `Name: message`, since no stack came with it.
 */
function wireError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  error.stack = `${name}: ${message}`;
  return error;
}
