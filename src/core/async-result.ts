/**
 * A handle on a task's result, as Celery's `AsyncResult`: the id `applyAsync`/`sendTask` returned
 * plus the backend to read it from. Works for a task any worker ran, ours or Python's, since
 * both write Celery's format.
 */
import type { JsonValue } from './json.js';
import {
  decodeException,
  READY_STATES,
  type ResultBackend,
  type ResultMeta,
  TaskFailedError,
  type TaskState,
} from './result-backend.js';

/** Options of {@link AsyncResult.get}. */
export interface GetOptions {
  /** Seconds to wait, as Celery's `get(timeout=…)`. @defaultValue wait for ever */
  readonly timeout?: number;
  /** Stops waiting (rejects with the signal's reason). */
  readonly signal?: AbortSignal;
}

/**
 * A task's result, read from a result backend.
 *
 * @example
 * const id = await publisher.applyAsync(add, { args: [1, 2] });
 * const sum = await new AsyncResult(id, backend).get({ timeout: 10 }); // 3
 */
export class AsyncResult {
  readonly #backend: Pick<ResultBackend, 'getMeta' | 'waitFor'>;

  constructor(
    /** The task id (for a chain, its last step; for a chord, its body). */
    readonly id: string,
    backend: Pick<ResultBackend, 'getMeta' | 'waitFor'>,
  ) {
    this.#backend = backend;
  }

  /** The task's current state: `PENDING` while nothing is stored. */
  async state(): Promise<TaskState> {
    return (await this.#backend.getMeta(this.id)).status;
  }

  /** True once the result will not change (success, failure, revoked). */
  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state());
  }

  /** The stored meta as it is now. */
  meta(): Promise<ResultMeta> {
    return this.#backend.getMeta(this.id);
  }

  /**
   * Waits for the result (woken by the backend's pub/sub, not by polling) and returns it.
   *
   * @throws TaskFailedError when the task failed or was revoked, with its exception's type
   * @throws ResultTimeoutError when no result is ready within `timeout` seconds
   */
  async get(options: GetOptions = {}): Promise<JsonValue> {
    const meta = await this.#backend.waitFor(this.id, {
      ...(options.timeout !== undefined ? { timeoutMs: options.timeout * 1000 } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return resultOf(meta);
  }
}

/**
 * The value of a ready meta.
 *
 * @throws TaskFailedError for a failure or a revoked task
 */
export function resultOf(meta: ResultMeta): JsonValue {
  if (meta.status === 'SUCCESS') return meta.result;
  throw new TaskFailedError(
    meta.task_id,
    meta.status,
    decodeException(meta.result),
    meta.traceback,
  );
}
