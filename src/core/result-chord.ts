/**
 * Chords on a key-value result backend, as Celery's Redis backend runs them
 * (`celery/backends/redis.py` `on_chord_part_return`, the same in 5.2 and 5.6): each header part
 * adds `[1, id, state, result]` to a sorted set scored by its `group_index`; whichever worker
 * (ours or Python's) counts the last part sends the body with the results in header order, or,
 * when a part failed, fails the body with `ChordError` and calls its errbacks. The store does the
 * counting; what to do once all parts are in is decided here.
 */
import { applySignature } from './canvas.js';
import type { JsonValue } from './json.js';
import type { TaskMessage } from './message.js';
import { decodeException, READY_STATES, type ResultMeta } from './result-backend.js';
import { metaFor } from './result-meta.js';
import { parseSignature, type SignatureDict } from './signature.js';

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
    const decoded: unknown = JSON.parse(member);
    if (!Array.isArray(decoded) || decoded.length < 4) {
      return { kind: 'fail', reason: `unreadable chord part ${member.slice(0, 80)}` };
    }
    const [, id, state, result] = decoded as [unknown, string, string, JsonValue];
    if (READY_STATES.has(state) && state !== 'SUCCESS') {
      const exc = decodeException(result);
      const text = exc.exc_message.map((part) => JSON.stringify(part)).join(', ');
      // Celery: f'Dependency {culprit.id} raised {exc!r}', repr with single quotes.
      return { kind: 'fail', reason: `Dependency ${id} raised ${exc.exc_type}(${pyQuotes(text)})` };
    }
    results.push(result);
  }
  return { kind: 'fire', results };
}

function pyQuotes(text: string): string {
  return text.replace(/"([^"\\]*)"/g, "'$1'");
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
 * @throws InvalidArgumentsError when `embed.chord` is not a signature (admission refuses those)
 */
export function completeChord(
  part: TaskMessage,
  decision: ChordDecision,
  options: CompleteChordOptions,
): ChordCompletion {
  const body = chordBody(part);
  const bodyId = typeof body.options.task_id === 'string' ? body.options.task_id : null;
  const now = options.now ?? new Date();
  if (decision.kind === 'fire') {
    const expansion = applySignature(body, {
      args: [[...decision.results]],
      parentId: part.id,
      rootId: part.rootId ?? part.id,
      idSeed: `${part.group ?? part.id}/chord-body`,
      route: options.route,
      now,
    });
    return { publish: expansion.messages, failure: null };
  }
  const id = bodyId ?? `${part.group ?? part.id}/chord-body`;
  const errbacks = errbacksOf(body);
  const publish = errbacks.flatMap(
    (errback, index) =>
      applySignature(errback, {
        args: [id],
        parentId: id,
        rootId: id,
        idSeed: `${id}/errbacks/${index}`,
        route: options.route,
        now,
      }).messages,
  );
  const state = {
    status: 'FAILURE' as const,
    result: {
      exc_type: 'ChordError',
      exc_message: [decision.reason],
      exc_module: 'celery.exceptions',
    },
    traceback: null,
  };
  const bodyMessage = { ...part, id, group: null, parentId: null };
  return { publish, failure: metaFor(bodyMessage, state, [], now) };
}

function chordBody(part: TaskMessage): SignatureDict {
  const parsed = parseSignature(part.embed.chord, 'embed.chord');
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
