/**
 * Which meta a message leaves in the result backend, as a Celery worker writes it: STARTED when
 * its run begins (`celery/app/trace.py`, `track_started`), then its outcome's
 * (`celery/backends/base.py` `mark_as_done` / `mark_as_failure` / `mark_as_retry` /
 * `mark_as_revoked`; `celery/worker/consumer/consumer.py` `on_unknown_task`). A run's metas carry
 * the request's fields, which a backend with `extended` writes (`_get_result_meta`).
 */
import { DEAD_LETTER_REASONS } from './dead-letter.js';
import { workerNodeName } from './event-dispatcher.js';
import { isPlainObject, type JsonObject, type JsonValue } from './json.js';
import type { TaskMessage } from './message.js';
import {
  type EncodedException,
  type ExtendedMeta,
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
  const meta = metaFor(record.message, state, record.children.map(childEntry), now);
  return { ...meta, extended: extendedMeta(record.message) };
}

/**
 * The node name this worker reports as Celery's `hostname` (`request.hostname`): the one its
 * events carry, `celery@<host>`, or `<function>@<environment>` in Lambda.
 */
export const WORKER_HOSTNAME = workerNodeName();

/**
 * The STARTED meta of a message about to run: `{pid, hostname}` as its result, no children yet,
 * the request's fields for a backend with `extended`.
 */
export function startedMeta(message: TaskMessage, pid: number = process.pid): ResultMeta {
  const state: OutcomeState = {
    status: 'STARTED',
    result: { pid, hostname: WORKER_HOSTNAME },
    traceback: null,
  };
  return { ...metaFor(message, state, []), extended: extendedMeta(message) };
}

/**
 * Whether a message's STARTED state is stored (Celery's `track_started`): the task's option, else
 * the app's default (`task_track_started`); never when its result is not stored, which would
 * leave STARTED for good.
 */
export function tracksStarted(
  task: { readonly trackStarted?: boolean | undefined; readonly ignoreResult: boolean },
  message: TaskMessage,
  byDefault: boolean,
): boolean {
  if (task.ignoreResult || message.ignoreResult) return false;
  return task.trackStarted ?? byDefault;
}

/**
 * The request's fields as Celery's `result_extended` stores them: the args as received (a JSON
 * list, not the encoded string of `encode=True` backends), the routing key as `queue`.
 */
export function extendedMeta(message: TaskMessage, worker: string = WORKER_HOSTNAME): ExtendedMeta {
  const { stamps, stamped_headers: headers } = message.extraHeaders;
  const fields = {
    name: message.task,
    args: message.args,
    kwargs: message.kwargs,
    worker,
    retries: message.retries,
    queue: message.routingKey,
  };
  // Celery ≥ 5.3 adds them only when `request.stamps` is a non-empty dict.
  if (!isPlainObject(stamps) || Object.keys(stamps).length === 0) return fields;
  return {
    ...fields,
    stamps: { headers: (headers ?? null) as JsonValue, values: stamps as JsonObject },
  };
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

/**
 * The meta a failure leaves on a remaining step of its chain (`mark_as_failure`: Celery stores
 * it under the step's own `task_id`, with the step's request rebuilt from its signature): the
 * failure's state, the step's own `group_id` and `parent_id`, and as extended fields the step's
 * name and arguments, no worker and no queue (it was never delivered). `null` for a step with no
 * id of its own, which Celery skips.
 */
export function chainStepMeta(failure: ResultMeta, step: JsonValue): ResultMeta | null {
  if (!isPlainObject(step)) return null;
  const options = isPlainObject(step.options) ? step.options : {};
  if (typeof options.task_id !== 'string') return null;
  const { status, result, traceback, date_done } = failure;
  return {
    status,
    result,
    traceback,
    children: [],
    date_done,
    task_id: options.task_id,
    ...(typeof options.group_id === 'string' ? { group_id: options.group_id } : {}),
    ...(typeof options.parent_id === 'string' ? { parent_id: options.parent_id } : {}),
    extended: {
      name: typeof step.task === 'string' ? step.task : '',
      args: Array.isArray(step.args) ? (step.args as JsonValue[]) : [],
      kwargs: isPlainObject(step.kwargs) ? (step.kwargs as JsonObject) : {},
      worker: null,
      retries: typeof options.retries === 'number' ? options.retries : 0,
      queue: null,
    },
  };
}
