/**
 * Chords on a key-value result backend, as Celery's Redis backend runs them
 * (`celery/backends/redis.py` `on_chord_part_return`, the same in 5.2 and 5.6): each header part
 * adds `[1, id, state, result]` to a sorted set scored by its `group_index`; whichever worker
 * (ours or Python's) counts the last part sends the body with the results in header order, or,
 * when a part failed, fails the body with `ChordError` and sends its errbacks. The store does the
 * counting; which parts a message counts, and what to do once all parts are in, is decided here.
 */
import { applySignature, deterministicId, group, stringOption } from './canvas.js';
import { isPlainObject, type JsonObject, type JsonValue, parsePythonJson } from './json.js';
import type { TaskMessage } from './message.js';
import { pythonRepr } from './python-repr.js';
import { decodeException, READY_STATES, type ResultMeta } from './result-backend.js';
import { parseSignature, type SignatureDict } from './signature.js';
import { formatCeleryTime } from './time.js';

/** One header part of a chord, as counted in `celery-taskset-meta-<group>.j`. */
export interface ChordPart {
  /** The id the part's result is counted under. */
  readonly id: string;
  /** The header's group id. */
  readonly group: string;
  /** Its place in the header; `null` sorts last, as Celery's `'+inf'` score. */
  readonly groupIndex: number | null;
  /** The chord's body signature (`embed.chord`, or a chain step's `options.chord`). */
  readonly body: JsonValue;
  /** The task that counts it: the body's `parent_id` when it fires. */
  readonly senderId: string;
  /** The workflow's root: the body's `root_id` when it fires. */
  readonly rootId: string;
}

/**
 * The chord part a finished message counts as itself (Celery: `if request.chord`), or `null`
 * when it is none (no body, or no group id: Celery's `if not gid or not tid: return`).
 */
export function chordPartOf(message: TaskMessage): ChordPart | null {
  if (message.embed.chord == null || !message.group) return null;
  return {
    id: message.id,
    group: message.group,
    groupIndex: message.groupIndex,
    body: message.embed.chord,
    senderId: message.id,
    rootId: message.rootId ?? message.id,
  };
}

/**
 * The chord part a step of a failed message's remaining chain counts, or `null`. Celery's
 * `mark_as_failure` (5.2 and 5.6) counts `if 'chord' in chain_elem_ctx.options`, with the step's
 * `options.task_id`, `group_id` and `group_index`: a chain in a chord header carries the chord on
 * its last step only (`prepare_steps`), so when an earlier step fails the chord would wait forever
 * for a step that never runs.
 */
export function chainStepChordPart(step: JsonValue, sender: TaskMessage): ChordPart | null {
  const options = optionsOf(step);
  const { task_id: id, group_id: groupId, group_index: index, chord: body } = options;
  if (body == null || typeof id !== 'string' || !id || typeof groupId !== 'string' || !groupId) {
    return null;
  }
  return {
    id,
    group: groupId,
    groupIndex: typeof index === 'number' ? index : null,
    body,
    senderId: sender.id,
    rootId: sender.rootId ?? sender.id,
  };
}

/** A chain step's `options`, or `{}` when it has none readable. */
function optionsOf(step: JsonValue): JsonObject {
  const options = isPlainObject(step) ? step.options : null;
  return isPlainObject(options) ? (options as JsonObject) : {};
}

/** The sorted-set member of a chord part, as Celery encodes it. */
export function chordMember(meta: ResultMeta): string {
  return JSON.stringify([1, meta.task_id, meta.status, meta.result]);
}

/** What the last part of a chord leads to. */
export type ChordDecision =
  | { readonly kind: 'fire'; readonly results: readonly JsonValue[] }
  | { readonly kind: 'fail'; readonly reason: string };

/**
 * Decides from all the parts' members (already in `group_index` order): the first failed part
 * fails the chord, as Celery's `_unpack_chord_result` does; otherwise the results in order.
 */
export function decideChord(members: readonly string[]): ChordDecision {
  const results: JsonValue[] = [];
  for (const member of members) {
    const decoded = readMember(member);
    if (!Array.isArray(decoded) || decoded.length < 4) {
      return { kind: 'fail', reason: `unreadable chord part ${member.slice(0, 80)}` };
    }
    const [, id, state, result] = decoded as [unknown, string, string, JsonValue];
    if (READY_STATES.has(state) && state !== 'SUCCESS') {
      const exc = decodeException(result);
      // 5.2.6 and 5.6.3 `_unpack_chord_result`: ChordError(f'Dependency {tid} raised {retval!r}'),
      // retval rebuilt by `exception_to_python` as `cls(*exc_message)`, so its repr is
      // `Type(arg, …)` with each arg's Python repr (plain repr, not saferepr: no length cap).
      const args = exc.exc_message.map((arg) => pythonRepr(arg, Infinity)).join(', ');
      return { kind: 'fail', reason: `Dependency ${id} raised ${exc.exc_type}(${args})` };
    }
    results.push(result);
  }
  return { kind: 'fire', results };
}

function readMember(member: string): unknown {
  try {
    // A Python part may hold NaN or Infinity, which Python's json writes bare.
    return parsePythonJson(member);
  } catch {
    // Reported by the caller as an unreadable part, which fails the chord as Celery's decode
    // error does (`ChordError('Join error: …')`).
    return null;
  }
}

/** What the store does once a chord's last part is in. */
export interface ChordCompletion {
  /** The body (when it fires) or its errbacks (when the chord failed). */
  readonly publish: readonly TaskMessage[];
  /** The body's FAILURE meta, when the chord failed. */
  readonly failure: ResultMeta | null;
}

/** Options of {@link completeChord}. */
export interface CompleteChordOptions {
  readonly route: (task: string) => string;
  readonly now?: Date;
}

/**
 * The body's messages (or its failure) after the last part `part` of its chord.
 *
 * A failed chord stores `ChordError(reason)` (module `celery.exceptions`) on the body's id, with
 * no group, parent or children (Celery's `chord_error_from_stack` → `fail_from_current_stack`
 * stores it with no request), and sends the body's `link_error` signatures as one group with
 * args `(body_id,)`, `parent_id` and `root_id` the body's id (`_call_task_errbacks`, which our
 * errbacks always go through: they may be Python). Ids derive from the body's id, so a repeat
 * publishes the same messages.
 *
 * @throws TypeError when the part's body is not a signature (admission refuses those)
 */
export function completeChord(
  part: ChordPart,
  decision: ChordDecision,
  options: CompleteChordOptions,
): ChordCompletion {
  const body = chordBody(part);
  const now = options.now ?? new Date();
  const bodySeed = `${part.group}/chord-body`;
  if (decision.kind === 'fire') {
    const expansion = applySignature(body, {
      args: [[...decision.results]],
      parentId: part.senderId,
      rootId: part.rootId,
      idSeed: bodySeed,
      route: options.route,
      now,
    });
    return { publish: expansion.messages, failure: null };
  }
  // The id the body would have fired under, so a waiter on it learns of the failure.
  const id = stringOption(body.options.task_id) ?? deterministicId(bodySeed);
  const errbacks = errbacksOf(body);
  const publish =
    errbacks.length === 0
      ? []
      : applySignature(group(...errbacks), {
          args: [id],
          // The fake request has no root_id: `root_id = request.root_id or task_id`.
          parentId: id,
          rootId: id,
          // The seed a failed body's own errbacks use (continuations.ts): one failure, one set.
          idSeed: `${id}/errbacks`,
          route: options.route,
          now,
        }).messages;
  const failure: ResultMeta = {
    status: 'FAILURE',
    result: {
      exc_type: 'ChordError',
      exc_message: [decision.reason],
      exc_module: 'celery.exceptions',
    },
    traceback: null,
    children: [],
    date_done: formatCeleryTime(now),
    task_id: id,
  };
  return { publish, failure };
}

function chordBody(part: ChordPart): SignatureDict {
  const parsed = parseSignature(part.body, 'embed.chord');
  if (!parsed.ok) throw new TypeError(parsed.reason);
  return parsed.signature;
}

function errbacksOf(body: SignatureDict): SignatureDict[] {
  const raw = body.options.link_error;
  const list = raw == null ? [] : Array.isArray(raw) ? raw : [raw];
  return list.flatMap((item, index) => {
    const parsed = parseSignature(item, `chord.options.link_error[${index}]`);
    return parsed.ok ? [parsed.signature] : [];
  });
}
