/**
 * One plain signature → one task message, reading its Celery `options` the way Celery's
 * `send_task` and `amqp.as_task_v2` read them. Internal to `canvas.ts`.
 */
import { isPlainObject, type JsonObject, type JsonValue } from './json.js';
import { createTaskMessage, type Embed, type TaskMessage } from './message.js';
import type { SignatureDict } from './signature.js';
import { parseCeleryTime } from './time.js';

/**
 * Celery's `Signature._merge`: partial args prepended and partial kwargs merged unless the
 * signature is immutable; extra options override the signature's, except `group_id` when the
 * signature already has one (`_IMMUTABLE_OPTIONS`: a member keeps its group). Options given
 * `null` are dropped first, as `apply_async` drops `None`.
 */
export function mergeSignature(
  sig: SignatureDict,
  args: readonly JsonValue[],
  kwargs: JsonObject,
  options: JsonObject,
): SignatureDict {
  const merged: JsonObject = { ...sig.options };
  for (const [key, value] of Object.entries(options)) {
    if (value === null) continue;
    if (key === 'group_id' && sig.options.group_id != null) continue;
    merged[key] = value;
  }
  return {
    task: sig.task,
    args: sig.immutable || args.length === 0 ? sig.args : [...args, ...sig.args],
    kwargs: sig.immutable ? sig.kwargs : { ...sig.kwargs, ...kwargs },
    options: merged,
    subtask_type: sig.subtask_type,
    immutable: sig.immutable,
  };
}

/**
 * The message for a plain signature whose options are already merged.
 *
 * `countdown` wins over `eta` (Celery converts a truthy countdown last); `expires` may be
 * seconds or ISO text; `queue`, else `routing_key`, else `route(task)`. Unknown keys and keys of
 * the wrong type are ignored, as a Celery worker ignores keys it does not read.
 */
export function messageForSignature(
  sig: SignatureDict,
  id: string,
  route: (task: string) => string,
  now: Date,
): TaskMessage {
  const o = sig.options;
  const countdown = numberOption(o.countdown);
  const eta = countdown ? null : timeOption(o.eta);
  const expires = numberOption(o.expires) ?? timeOption(o.expires);
  const hard = numberOption(o.time_limit) ?? null;
  const soft = numberOption(o.soft_time_limit) ?? null;
  const priority = numberOption(o.priority);
  return createTaskMessage(
    {
      task: sig.task,
      queue: stringOption(o.queue) ?? stringOption(o.routing_key) ?? route(sig.task),
      args: sig.args,
      kwargs: sig.kwargs,
      id,
      ...(countdown ? { countdown } : {}),
      ...(eta ? { eta } : {}),
      ...(expires === undefined || expires === null ? {} : { expires }),
      ...(priority === undefined ? {} : { priority }),
      timeLimit: [hard, soft],
      parentId: stringOption(o.parent_id) ?? null,
      rootId: stringOption(o.root_id) ?? null,
      shadow: stringOption(o.shadow) ?? null,
      ignoreResult: o.ignore_result === true,
      embed: embedFor(o),
      group: stringOption(o.group_id) ?? null,
      groupIndex: numberOption(o.group_index) ?? null,
      replyTo: stringOption(o.reply_to) ?? null,
      // Celery's `send_task_message` merges `headers` into the header table (a trace context).
      ...(isPlainObject(o.headers) ? { headers: o.headers } : {}),
    },
    now,
  );
}

function embedFor(o: JsonObject): Embed {
  const chord = o.chord;
  return {
    callbacks: listOption(o.link),
    errbacks: listOption(o.link_error),
    chain: Array.isArray(o.chain) && o.chain.length > 0 ? o.chain : null,
    chord: chord !== null && typeof chord === 'object' && !Array.isArray(chord) ? chord : null,
  };
}

/** Celery's `maybe_list`: one signature or a list; empty means none. */
function listOption(value: JsonValue | undefined): JsonValue[] | null {
  if (value === undefined || value === null) return null;
  const list = Array.isArray(value) ? value : [value];
  return list.length > 0 ? list : null;
}

function stringOption(value: JsonValue | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function numberOption(value: JsonValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function timeOption(value: JsonValue | undefined): Date | null {
  return typeof value === 'string' ? parseCeleryTime(value) : null;
}
