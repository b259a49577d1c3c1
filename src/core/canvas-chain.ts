/**
 * Chains, as Celery's `_chain.run` and `prepare_steps` publish them: every step frozen with its
 * id, only the first step published, the others in its `embed.chain` **last step first** (a
 * worker pops the end). Internal to `canvas.ts`.
 */
import {
  deterministicId,
  type ExpandContext,
  type Expansion,
  expand,
  optionId,
  part,
} from './canvas.js';
import { chordHeader, unrollGroup } from './canvas-group.js';
import type { JsonObject, JsonValue } from './json.js';
import { type SignatureDict, signatureJson } from './signature.js';
import { mergeSignature } from './signature-message.js';

/**
 * Expands a chain signature.
 *
 * Chain-level options go where Celery puts them: `task_id`, `group_id`, `group_index` and `chord`
 * to the last step (it is the one a group or chord waits on), `link` to the last step,
 * `link_error` to every step; the remaining options (`queue`, `countdown`…) to the first step
 * only. A nested chain is spliced in; a group followed by a step becomes a chord of the two.
 */
export function expandChain(sig: SignatureDict, ctx: ExpandContext): Expansion {
  const merged = mergeSignature(sig, [], {}, ctx.options);
  const {
    task_id,
    link,
    link_error,
    group_id,
    group_index,
    chord,
    chain: outer,
    ...firstOptions
  } = merged.options;
  const rootId = typeof merged.options.root_id === 'string' ? merged.options.root_id : null;
  const stack = stepsOf(sig);
  // Built last step first, exactly the order `embed.chain` wants.
  const frozen: SignatureDict[] = [];
  while (stack.length > 0) {
    let step = stack.pop() as SignatureDict;
    if (step.subtask_type === 'chain') {
      stack.push(...stepsOf(step));
      continue;
    }
    const isLast = frozen.length === 0;
    if (step.subtask_type === 'group' && !isLast) {
      step = upgradeToChord(step, frozen.pop() as SignatureDict);
    }
    const seed = isLast ? ctx.idSeed : `${ctx.idSeed}/chain/${frozen.length}`;
    const extra: JsonObject = rootId === null ? {} : { root_id: rootId };
    if (isLast) {
      Object.assign(extra, defined({ group_id, group_index, chord }));
      if (typeof task_id === 'string' && optionId(step) === null) extra.task_id = task_id;
    }
    frozen.push(withListOption(freeze(step, seed, extra), 'link_error', link_error));
  }
  const last = frozen[0];
  if (last === undefined) return { id: deterministicId(ctx.idSeed), messages: [], chordSizes: [] };
  frozen[0] = withListOption(last, 'link', link);
  const id = resultId(frozen[0] as SignatureDict);
  const first = frozen.pop() as SignatureDict;
  const rest: JsonValue[] = [...(Array.isArray(outer) ? outer : []), ...frozen.map(signatureJson)];
  const published = expand(first, {
    ...ctx,
    // The chain's own args, after any partial ones, go to its first step (`_chain.run`).
    args: sig.immutable ? sig.args : [...ctx.args, ...sig.args],
    kwargs: sig.immutable ? {} : ctx.kwargs,
    options: { ...firstOptions, ...(rest.length > 0 ? { chain: rest } : {}) },
    idSeed: frozen.length === 0 ? ctx.idSeed : `${ctx.idSeed}/chain/${frozen.length}`,
  });
  return { id, messages: published.messages, chordSizes: published.chordSizes };
}

function stepsOf(sig: SignatureDict): SignatureDict[] {
  const tasks = Array.isArray(sig.kwargs.tasks) ? sig.kwargs.tasks : [];
  return tasks.map((item, index) => part(item, `${sig.task}.kwargs.tasks[${index}]`));
}

/** `group(...) | s` inside a chain is `chord(group(...), s)` (Celery's `prepare_steps`). */
function upgradeToChord(header: SignatureDict, body: SignatureDict): SignatureDict {
  return {
    task: 'celery.chord',
    args: [],
    kwargs: { kwargs: {}, header: signatureJson(header), body: signatureJson(body) },
    options: {},
    subtask_type: 'chord',
    immutable: false,
  };
}

/**
 * Celery's `freeze`: gives a step (and, for a group or chord, its parts) the ids it will run
 * under, so the chain's result handle and any chord wait on known ids. Ids already set are kept.
 */
function freeze(step: SignatureDict, seed: string, extra: JsonObject): SignatureDict {
  const own = mergeSignature(step, [], {}, extra);
  if (step.subtask_type === 'group') {
    const groupId = optionId(own) ?? deterministicId(seed);
    const members = unrollGroup(step).map((member, index) =>
      freeze(member, `${seed}/group/${index}`, {
        group_index: index,
        ...defined({ chord: extra.chord, root_id: extra.root_id }),
      }),
    );
    return {
      ...own,
      kwargs: { tasks: members.map(signatureJson) },
      options: { ...own.options, task_id: groupId },
    };
  }
  if (step.subtask_type === 'chord') {
    const { chord: outerChord, group_id, group_index, task_id, ...shared } = own.options;
    const body = freeze(part(step.kwargs.body, 'kwargs.body'), seed, {
      ...defined({ chord: outerChord, group_id, group_index, task_id }),
      ...shared,
    });
    const header = chordHeader(step);
    const headerId =
      typeof header.options.task_id === 'string'
        ? header.options.task_id
        : deterministicId(`${seed}/chord`);
    const members = header.members.map((member, index) =>
      freeze(member, `${seed}/chord/group/${index}`, {
        // No group_id, as in Celery: the chord's run gives the members the header's id.
        group_index: index,
        chord: signatureJson(body),
        ...defined({ root_id: extra.root_id }),
      }),
    );
    const headerGroup: SignatureDict = {
      task: 'celery.group',
      args: [],
      kwargs: { tasks: members.map(signatureJson) },
      options: { ...header.options, task_id: headerId, chord: signatureJson(body) },
      subtask_type: 'group',
      immutable: false,
    };
    return {
      ...own,
      kwargs: { ...step.kwargs, header: signatureJson(headerGroup), body: signatureJson(body) },
      options: { task_id: headerId },
    };
  }
  // Celery's key order: the step's own options, then `task_id`, then what freezing adds.
  const id = optionId(step) ?? (typeof extra.task_id === 'string' ? extra.task_id : null);
  return {
    ...own,
    options: { ...step.options, task_id: id ?? deterministicId(seed), ...own.options },
  };
}

/** The id a handle on the step waits for: a chord's body, else the step's own id. */
function resultId(step: SignatureDict): string {
  if (step.subtask_type === 'chord') return optionId(part(step.kwargs.body, 'kwargs.body')) ?? '';
  return optionId(step) ?? '';
}

/** Celery's `extend_list_option`: appends to a list option, turning a single value into a list. */
function withListOption(
  sig: SignatureDict,
  key: string,
  value: JsonValue | undefined,
): SignatureDict {
  if (value === undefined || value === null) return sig;
  const current = sig.options[key];
  const before =
    current === undefined || current === null ? [] : Array.isArray(current) ? current : [current];
  const added = Array.isArray(value) ? value : [value];
  return { ...sig, options: { ...sig.options, [key]: [...before, ...added] } };
}

function defined(values: Record<string, JsonValue | undefined>): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined && value !== null) out[key] = value;
  }
  return out;
}
