/**
 * The result backend contract and Celery's result format, with no store behind it: states, the
 * meta JSON (`celery/backends/base.py` `_get_result_meta`, field order kept, since Python peers and
 * tools compare raw values), exception encoding both ways (`prepare_exception` /
 * `exception_to_python`) and key names with Celery ≥ 5.3's `global_keyprefix` rule.
 * Stores (`src/brokers/redis/redis-result-backend.ts`) build on these; chords are in
 * `result-chord.ts`.
 */
import type { ChordSize } from './canvas.js';
import { CeleryError } from './errors.js';
import { isPlainObject, type JsonObject, type JsonValue } from './json.js';
import type { TaskMessage } from './message.js';
import type { TaskOutcome } from './task-outcome.js';

/** Celery's task states (`celery/states.py`), as written to the backend. */
export const TASK_STATES = {
  pending: 'PENDING',
  started: 'STARTED',
  retry: 'RETRY',
  failure: 'FAILURE',
  success: 'SUCCESS',
  revoked: 'REVOKED',
} as const;

/** One of {@link TASK_STATES}. */
export type TaskState = (typeof TASK_STATES)[keyof typeof TASK_STATES];

/** States after which a task's result never changes (Celery's `READY_STATES`). */
export const READY_STATES: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

/** States whose `result` is an encoded exception (Celery's `EXCEPTION_STATES`). */
export const EXCEPTION_STATES: ReadonlySet<string> = new Set(['RETRY', 'FAILURE', 'REVOKED']);

/** A task's stored result, as Celery writes it (`celery-task-meta-<id>`). */
export interface ResultMeta {
  readonly status: TaskState;
  /** The return value, or an {@link EncodedException} in exception states. */
  readonly result: JsonValue;
  readonly traceback: string | null;
  readonly children: readonly JsonValue[];
  /** Set in ready states only. */
  readonly date_done: string | null;
  readonly task_id: string;
  readonly group_id?: string;
  readonly parent_id?: string;
  /**
   * The request's fields (Celery's `result_extended`), set on the metas of a run: a backend
   * writes them only when its `extended` option is on.
   */
  readonly extended?: ExtendedMeta;
}

/**
 * Celery's extended result fields (`_get_result_meta` with `result_extended=True`), in its order.
 * Celery ≥ 5.3 adds `stamped_headers` and each stamp after them, for a stamped message only.
 */
export interface ExtendedMeta {
  /** The task's name (`request.task`). */
  readonly name: string;
  readonly args: readonly JsonValue[];
  readonly kwargs: JsonObject;
  /** The worker's node name (`request.hostname`); `null` for a chain step failed with another. */
  readonly worker: string | null;
  readonly retries: number;
  /**
   * The delivery's routing key (`delivery_info['routing_key']`): its queue, routed by default;
   * `null` for a chain step failed with another (it was never delivered).
   */
  readonly queue: string | null;
  /** A stamped message's `stamped_headers` and stamps (Celery ≥ 5.3), in their order. */
  readonly stamps?: { readonly headers: JsonValue; readonly values: JsonObject };
}

/** An exception as Celery stores it. */
export interface EncodedException {
  readonly exc_type: string;
  readonly exc_message: readonly JsonValue[];
  readonly exc_module: string;
}

/** `exc_module` of our own errors: never `builtins`, which Python would resolve to a real class. */
export const OUR_EXC_MODULE = 'serverless_celery';

/** One finished message to record, with what its run came to. */
export interface OutcomeRecord {
  readonly message: TaskMessage;
  readonly outcome: TaskOutcome;
  /** False for `ignore_result`: nothing stored, though a chord part is still counted. */
  readonly store: boolean;
  /** Ids of the continuations published for it (Celery's `children`). */
  readonly children: readonly string[];
}

/** A result backend: where outcomes are stored and waited for. */
export interface ResultBackend {
  /** Stores outcomes and counts chord parts; `publish` sends a chord's body once it is due. */
  record(
    items: readonly OutcomeRecord[],
    publish: (messages: readonly TaskMessage[]) => Promise<void>,
  ): Promise<void>;
  /** Stores chord sizes, before the chords' header messages are published. */
  setChordSize(sizes: readonly ChordSize[]): Promise<void>;
  /** The stored meta, or a PENDING one when none is stored. */
  getMeta(id: string): Promise<ResultMeta>;
  /** Resolves with the meta once it is ready. @throws ResultTimeoutError */
  waitFor(id: string, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<ResultMeta>;
  close(): Promise<void>;
}

/** A task's result was a failure: the exception as its worker stored it (any language). */
export class TaskFailedError extends CeleryError {
  override name = 'TaskFailedError' as const;
  constructor(
    readonly taskId: string,
    readonly state: TaskState,
    readonly exception: EncodedException,
    readonly remoteTraceback: string | null,
  ) {
    super(`task ${taskId} ${state}: ${exception.exc_type}(${messageText(exception)})`);
  }
}

/** No ready result within the time asked for. */
export class ResultTimeoutError extends CeleryError {
  override name = 'ResultTimeoutError' as const;
  constructor(
    readonly taskId: string,
    readonly timeoutMs: number,
  ) {
    super(`the result of task ${taskId} was not ready within ${timeoutMs} ms`);
  }
}

/** Celery ≥ 5.3's rule: the prefix gets `_` unless it already ends with one of `:_-.`. */
export function globalKeyPrefix(prefix: string): string {
  if (prefix === '') return '';
  return ':_-.'.includes(prefix.slice(-1)) ? prefix : `${prefix}_`;
}

/** `celery-task-meta-<id>`, prefixed. */
export function taskMetaKey(id: string, prefix = ''): string {
  return `${globalKeyPrefix(prefix)}celery-task-meta-${id}`;
}

/** `celery-taskset-meta-<group id>`, prefixed (chords add `.j`, `.t`, `.s`). */
export function tasksetKey(groupId: string, prefix = ''): string {
  return `${globalKeyPrefix(prefix)}celery-taskset-meta-${groupId}`;
}

/** Encodes an error as Celery does; an error rebuilt from Python keeps its module. */
export function encodeException(error: {
  readonly name: string;
  readonly message: string;
  readonly excModule?: string | undefined;
}): EncodedException {
  return {
    exc_type: error.name,
    exc_message: [error.message],
    exc_module: error.excModule ?? OUR_EXC_MODULE,
  };
}

/** Reads an encoded exception written by either side; anything else becomes a generic one. */
export function decodeException(value: JsonValue): EncodedException {
  if (isPlainObject(value) && typeof value.exc_type === 'string') {
    const raw = value.exc_message;
    const message = Array.isArray(raw) ? raw : raw === undefined || raw === null ? [] : [raw];
    const module = typeof value.exc_module === 'string' ? value.exc_module : OUR_EXC_MODULE;
    return { exc_type: value.exc_type, exc_message: message, exc_module: module };
  }
  return { exc_type: 'Exception', exc_message: [JSON.stringify(value)], exc_module: 'builtins' };
}

function messageText(exception: EncodedException): string {
  return exception.exc_message
    .map((part) => (typeof part === 'string' ? part : JSON.stringify(part)))
    .join(', ');
}

/**
 * The meta with Celery's field order, as JSON text; with `extended`, its {@link ExtendedMeta}
 * too (when it has one), between the ids and `task_id` as Celery writes them.
 */
export function resultMetaJson(meta: ResultMeta, options: { extended?: boolean } = {}): string {
  const { status, result, traceback, children, date_done, task_id, group_id, parent_id } = meta;
  return JSON.stringify({
    status,
    result,
    traceback,
    children,
    date_done,
    ...(group_id !== undefined ? { group_id } : {}),
    ...(parent_id !== undefined ? { parent_id } : {}),
    ...(options.extended && meta.extended ? extendedJson(meta.extended) : {}),
    task_id,
  });
}

function extendedJson(extended: ExtendedMeta): JsonObject {
  const { name, args, kwargs, worker, retries, queue, stamps } = extended;
  const fields: JsonObject = { name, args: [...args], kwargs, worker, retries, queue };
  if (!stamps) return fields;
  // Celery's `meta.update(request.stamps)`: a stamp keeps the place of a field it names.
  return { ...fields, stamped_headers: stamps.headers, ...stamps.values };
}

/** Parses a stored meta (either side's); `null` when it is not one. */
export function parseResultMeta(text: string): ResultMeta | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Not ours to judge: a key holding something else reads as no result.
    return null;
  }
  if (
    !isPlainObject(value) ||
    typeof value.status !== 'string' ||
    typeof value.task_id !== 'string'
  ) {
    return null;
  }
  return {
    status: value.status as TaskState,
    result: (value.result ?? null) as JsonValue,
    traceback: typeof value.traceback === 'string' ? value.traceback : null,
    children: Array.isArray(value.children) ? (value.children as JsonValue[]) : [],
    date_done: typeof value.date_done === 'string' ? value.date_done : null,
    task_id: value.task_id,
    ...(typeof value.group_id === 'string' ? { group_id: value.group_id } : {}),
    ...(typeof value.parent_id === 'string' ? { parent_id: value.parent_id } : {}),
  };
}

/** A PENDING meta: what Celery reports for an id with nothing stored. */
export function pendingMeta(id: string): ResultMeta {
  return {
    status: 'PENDING',
    result: null,
    traceback: null,
    children: [],
    date_done: null,
    task_id: id,
  };
}
