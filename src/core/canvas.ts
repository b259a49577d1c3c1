/**
 * Celery's canvas: `chain`, `group` and `chord` as signature dicts, and {@link applySignature},
 * which turns any signature into the task messages Celery would publish for it
 * (`celery/canvas.py` `_chain.run`/`prepare_steps`, `group.apply_async`, `_chord.run`).
 *
 * Ids: Celery draws a fresh uuid for every part without `options.task_id`; we derive them from
 * `idSeed`, so that applying the same signature twice (a continuation repeated after a crash)
 * publishes the same ids. The chord size write is the caller's (it needs the result backend),
 * hence `chordSizes` in the result.
 */
import { createHash } from 'node:crypto';
import { expandChain } from './canvas-chain.js';
import { expandChord, expandGroup, unrollGroup } from './canvas-group.js';
import { InvalidArgumentsError } from './errors.js';
import type { JsonObject, JsonValue } from './json.js';
import type { TaskMessage } from './message.js';
import type { Registry } from './registry.js';
import { parseSignature, type SignatureDict, signatureJson } from './signature.js';
import { mergeSignature, messageForSignature } from './signature-message.js';
import { DEFAULT_QUEUE } from './task.js';

export { chordSizeOf, needsResultBackend } from './canvas-group.js';

/** A chord's size: the result backend must hold it before the last header part completes. */
export interface ChordSize {
  /** The header's group id (`celery-taskset-meta-<groupId>.s`). */
  readonly groupId: string;
  /** How many header results the body waits for. */
  readonly size: number;
}

/** The messages a signature expands to, in publishing order. */
export interface Expansion {
  /** The id a result handle waits on: the task, the last chain step, the group, the chord body. */
  readonly id: string;
  /** Messages to publish (a chain publishes its first step only). */
  readonly messages: readonly TaskMessage[];
  /** Chord sizes to store before publishing `messages`. */
  readonly chordSizes: readonly ChordSize[];
}

/** How {@link applySignature} applies a signature (Celery's `sig.apply_async(args, …)`). */
export interface ApplyOptions {
  /** Partial args (a parent's result), prepended unless the signature is immutable. */
  readonly args?: readonly JsonValue[];
  /** Partial kwargs, merged unless immutable. */
  readonly kwargs?: JsonObject;
  /** The task sending it, when sent from a task. */
  readonly parentId?: string | null;
  /** The workflow's root. @defaultValue each top-level message is its own root */
  readonly rootId?: string | null;
  /** The rest of a chain, passed on unchanged (last step first). */
  readonly chain?: readonly JsonValue[] | null;
  /** Ids of parts without `options.task_id` derive from it ({@link deterministicId}). */
  readonly idSeed: string;
  /** Queue of a task whose signature names neither `queue` nor `routing_key`. */
  readonly route: (task: string) => string;
  /** @defaultValue now */
  readonly now?: Date;
}

/** A canvas is a Celery signature dict too (`subtask_type` `chain`, `group` or `chord`). */
export type Canvas = SignatureDict;

/** Internal state of one expansion step. */
export interface ExpandContext {
  readonly args: readonly JsonValue[];
  readonly kwargs: JsonObject;
  /** Extra options merged by Celery's `_merge` rules. */
  readonly options: JsonObject;
  readonly idSeed: string;
  readonly route: (task: string) => string;
  readonly now: Date;
}

/**
 * Expands a signature (plain, chain, group or chord) into the messages to publish, exactly as
 * Celery's `apply_async` of that signature would, with the merge rules of `Signature._merge`.
 *
 * @throws InvalidArgumentsError for a part that is not a signature, an unsupported
 *   `subtask_type` (`chunks`, `xmap`, `xstarmap`) or a `link` on a group
 */
export function applySignature(sig: SignatureDict, options: ApplyOptions): Expansion {
  const extra: JsonObject = {};
  if (options.chain != null && options.chain.length > 0) extra.chain = [...options.chain];
  if (options.parentId != null) extra.parent_id = options.parentId;
  if (options.rootId != null) extra.root_id = options.rootId;
  return expand(sig, {
    args: options.args ?? [],
    kwargs: options.kwargs ?? {},
    options: extra,
    idSeed: options.idSeed,
    route: options.route,
    now: options.now ?? new Date(),
  });
}

/** Dispatches on `subtask_type`. */
export function expand(sig: SignatureDict, ctx: ExpandContext): Expansion {
  switch (sig.subtask_type) {
    case null: {
      const merged = mergeSignature(sig, ctx.args, ctx.kwargs, ctx.options);
      const id = optionId(merged) ?? deterministicId(ctx.idSeed);
      const message = messageForSignature(merged, id, ctx.route, ctx.now);
      return { id, messages: [message], chordSizes: [] };
    }
    case 'chain':
      return expandChain(sig, ctx);
    case 'group':
      return expandGroup(sig, ctx);
    case 'chord':
      return expandChord(sig, ctx);
    default:
      throw new InvalidArgumentsError(sig.task, [
        { path: 'subtask_type', message: `${sig.subtask_type} is not supported` },
      ]);
  }
}

/** A nested signature, or an error naming where it is. */
export function part(value: JsonValue | undefined, path: string): SignatureDict {
  const parsed = parseSignature(value, path);
  if (!parsed.ok) throw new InvalidArgumentsError(path, [{ path, message: parsed.reason }]);
  return parsed.signature;
}

/** The signature's `options.task_id`, if it has one. */
export function optionId(sig: SignatureDict): string | null {
  return stringOption(sig.options.task_id);
}

/** A non-empty string option, else `null` (Celery treats `''` like an unset id). */
export function stringOption(value: JsonValue | undefined): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/**
 * A routing function for {@link ApplyOptions.route}: a declared task's queue, else Celery's
 * default queue `celery` (what a Celery app without `task_routes` does).
 */
export function routeFor(registry: Registry): (task: string) => string {
  return (task) => {
    const found = registry.lookup(task);
    return found.kind === 'task' ? found.task.options.queue : DEFAULT_QUEUE;
  };
}

/** Namespace of our derived ids (a fixed random uuid). */
const ID_NAMESPACE = Buffer.from('3f0b6d2a9c4e4b7d8a1e5c6f7d8e9fa0', 'hex');

/**
 * A uuid derived from `seed` (version 5: SHA-1 of a fixed namespace and the seed), so the same
 * seed always gives the same id.
 *
 * @example
 * deterministicId(`${message.id}/callbacks/0`); // the same on every retry of that message
 */
export function deterministicId(seed: string): string {
  const hash = createHash('sha1').update(ID_NAMESPACE).update(seed, 'utf8').digest();
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50;
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Celery's `chain(...)`: run the steps one after another, each given the previous result as its
 * first argument (unless immutable).
 *
 * @example
 * await publisher.applyAsync(chain(add.s({ args: [1, 2] }), add.s({ args: [3] })));
 */
export function chain(...steps: readonly Canvas[]): Canvas {
  return composite('celery.chain', 'chain', { tasks: steps.map(signatureJson) });
}

/**
 * Celery's `group(...)`: run the members in parallel under one group id.
 *
 * @example
 * await publisher.applyAsync(group(add.s({ args: [1, 1] }), add.s({ args: [2, 2] })));
 */
export function group(...members: readonly Canvas[]): Canvas {
  return composite('celery.group', 'group', { tasks: members.map(signatureJson) });
}

/**
 * Celery's `chord(header, body)`: run the header in parallel, then the body with the list of
 * their results. Needs a result backend shared by every worker that runs a header part.
 *
 * @example
 * await publisher.applyAsync(chord([add.s({ args: [1, 1] }), add.s({ args: [2, 2] })], tsum.s()));
 */
export function chord(header: Canvas | readonly Canvas[], body: Canvas): Canvas {
  const members = isCanvasList(header)
    ? header
    : header.subtask_type === 'group'
      ? unrollGroup(header)
      : [header];
  return composite('celery.chord', 'chord', {
    kwargs: {},
    header: members.map(signatureJson),
    body: signatureJson(body),
  });
}

function isCanvasList(value: Canvas | readonly Canvas[]): value is readonly Canvas[] {
  return Array.isArray(value);
}

function composite(task: string, type: string, kwargs: JsonObject): Canvas {
  return { task, args: [], kwargs, options: {}, subtask_type: type, immutable: false };
}
