/**
 * Which meta a finished message leaves in the result backend, as a Celery worker writes it
 * (`celery/app/trace.py`, `celery/backends/base.py` `mark_as_done` / `mark_as_failure` /
 * `mark_as_retry` / `mark_as_revoked`; `celery/worker/consumer/consumer.py` `on_unknown_task`).
 */
import { DEAD_LETTER_REASONS } from './dead-letter.js';
import type { JsonValue } from './json.js';
import type { TaskMessage } from './message.js';
import {
  type EncodedException,
  encodeException,
  type OutcomeRecord,
  type ResultMeta,
  type TaskState,
} from './result-backend.js';
import type { TaskOutcome } from './task-outcome.js';
import { formatCeleryTime } from './time.js';

/** State, result and traceback of an outcome, before ids and dates are added. */
export interface OutcomeState {
  readonly status: TaskState;
  readonly result: JsonValue;
  readonly traceback: string | null;
}

/**
 * What an outcome stores; `null` when it stores nothing (a duplicate, a message not due yet, or
 * one dead-lettered before it could be told apart: an undecodable message has no id).
 */
export function outcomeState(outcome: TaskOutcome): OutcomeState | null {
  switch (outcome.kind) {
    case 'succeeded':
      return { status: 'SUCCESS', result: outcome.result ?? null, traceback: null };
    case 'ignored':
      // Sentry's `retry.ignore`: the task ended without a value.
      return { status: 'SUCCESS', result: null, traceback: null };
    case 'retry':
      return failed('RETRY', { name: outcome.errorType, message: outcome.errorMessage });
    case 'dead':
      return deadState(outcome.reason);
    case 'duplicate':
    case 'not-due':
      return null;
  }
}

function deadState(reason: Extract<TaskOutcome, { kind: 'dead' }>['reason']): OutcomeState {
  switch (reason.reason) {
    case DEAD_LETTER_REASONS.expired:
      return failed('REVOKED', {
        name: 'TaskRevokedError',
        message: 'expired',
        excModule: 'celery.exceptions',
      });
    case DEAD_LETTER_REASONS.unknownTask:
      return failed('FAILURE', {
        name: 'NotRegistered',
        message: reason.task ?? '',
        excModule: 'celery.exceptions',
      });
    default:
      return failed('FAILURE', {
        name: reason.errorType ?? 'TaskDeadLettered',
        message: reason.errorMessage ?? `${reason.reason}: ${reason.detail}`,
      });
  }
}

function failed(
  status: TaskState,
  error: { name: string; message: string; excModule?: string },
): OutcomeState {
  const result: EncodedException = encodeException(error);
  return { status, result: { ...result, exc_message: [...result.exc_message] }, traceback: null };
}

/** Celery's `children` entry of a continuation we published: `[[id, null], null]`. */
export function childEntry(id: string): JsonValue {
  return [[id, null], null];
}

/** The meta to store for a record, or `null` when nothing is stored for it. */
export function metaForRecord(record: OutcomeRecord, now: Date = new Date()): ResultMeta | null {
  const state = outcomeState(record.outcome);
  if (!state) return null;
  return metaFor(record.message, state, record.children.map(childEntry), now);
}

/** The meta of `message` in `state`: `date_done` in ready states only, group and parent ids carried. */
export function metaFor(
  message: TaskMessage,
  state: OutcomeState,
  children: readonly JsonValue[],
  now: Date = new Date(),
): ResultMeta {
  const ready =
    state.status === 'SUCCESS' || state.status === 'FAILURE' || state.status === 'REVOKED';
  return {
    ...state,
    children,
    date_done: ready ? formatCeleryTime(now) : null,
    task_id: message.id,
    ...(message.group ? { group_id: message.group } : {}),
    ...(message.parentId ? { parent_id: message.parentId } : {}),
  };
}
