/**
 * A task's return value as it leaves the run: JSON, as Celery's JSON serializer would write it,
 * and small enough to travel. The value becomes the first argument of the task's callbacks and
 * next chain step, and on Lambda it rides back from the task function to the dispatcher inside
 * the invoke's answer (6 MB for the whole batch), so it is held to the task's `maxArgumentBytes`:
 * the limit its callbacks' arguments would be held to anyway. (With the defaults, 64 KiB × an
 * invoke batch of 10 stays far under Lambda's 6 MB; raise `maxArgumentBytes` and lower
 * `invokeBatchSize` together.)
 *
 * Only results someone needs are encoded (a workflow continues from it, or a result backend
 * stores it); a task nobody waits on may return anything, as before.
 */
import { CeleryError } from './errors.js';
import type { JsonValue } from './json.js';
import type { TaskMessage } from './message.js';

/**
 * A task's return value cannot be passed on: it is not JSON (a `BigInt`, a cycle) or it is over
 * the size limit. Celery fails the task the same way when its result does not serialise
 * (`EncodeError`): the task is not retried, its errbacks are called.
 */
export class ResultEncodeError extends CeleryError {
  override name = 'ResultEncodeError' as const;
  /** Task whose result it was. */
  readonly task: string;

  constructor(task: string, message: string, options?: { cause?: unknown }) {
    super(`result of task ${task} ${message}`, options);
    this.task = task;
  }
}

/** True when the message's workflow continues from its result (`callbacks` or `chain`). */
export function workflowNeedsResult(message: TaskMessage): boolean {
  const { callbacks, chain } = message.embed;
  return (callbacks?.length ?? 0) > 0 || (chain?.length ?? 0) > 0;
}

/** What {@link encodeResult} made of a return value. */
export type EncodedResult =
  | { readonly ok: true; readonly value: JsonValue }
  | { readonly ok: false; readonly error: ResultEncodeError };

/**
 * The JSON form of `result` (`undefined` becomes `null`, as a Python function returning nothing
 * gives `None`; `Date`s become ISO strings, via `toJSON`), or why it cannot be passed on.
 *
 * @param task - task name, for the error
 * @param result - what the handler returned
 * @param limit - most bytes of UTF-8 JSON allowed
 */
export function encodeResult(task: string, result: unknown, limit: number): EncodedResult {
  let text: string | undefined;
  try {
    text = JSON.stringify(result ?? null);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      error: new ResultEncodeError(task, `is not JSON: ${why}`, { cause: error }),
    };
  }
  // JSON.stringify answers undefined for a function or a symbol at the top.
  if (text === undefined) {
    return { ok: false, error: new ResultEncodeError(task, `is not JSON: ${typeof result}`) };
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limit) {
    const why = `encodes to ${bytes} bytes, over the limit of ${limit} bytes (maxArgumentBytes): return an id, not data`;
    return { ok: false, error: new ResultEncodeError(task, why) };
  }
  return { ok: true, value: JSON.parse(text) as JsonValue };
}
