/**
 * Groups and chords, as Celery's `group.apply_async` and `_chord.run` publish them. Internal to
 * `canvas.ts`.
 */
import {
  type ChordSize,
  deterministicId,
  type ExpandContext,
  type Expansion,
  expand,
  group,
  optionId,
  part,
  stringOption,
} from './canvas.js';
import { InvalidArgumentsError } from './errors.js';
import type { JsonObject, JsonValue } from './json.js';
import type { TaskMessage } from './message.js';
import { type SignatureDict, signatureJson } from './signature.js';
import { mergeSignature } from './signature-message.js';

/** Celery's `group.apply_async`: every member published with the group id and its index. */
export function expandGroup(sig: SignatureDict, ctx: ExpandContext): Expansion {
  const merged = mergeSignature(sig, [], {}, ctx.options);
  const { task_id, link, link_error, ...options } = merged.options;
  if (link != null || link_error != null) {
    throw new InvalidArgumentsError(sig.task, [
      { path: 'options.link', message: 'cannot link a group: use a chord, or link its members' },
    ]);
  }
  const groupId = typeof task_id === 'string' ? task_id : deterministicId(ctx.idSeed);
  const members = unrollGroup(sig);
  const args = sig.immutable ? [] : ctx.args;
  const messages: TaskMessage[] = [];
  const chordSizes: ChordSize[] = [];
  members.forEach((member, index) => {
    const expanded = expand(member, {
      ...ctx,
      args,
      kwargs: sig.immutable ? {} : ctx.kwargs,
      options: { ...options, group_id: groupId, group_index: index },
      idSeed: `${ctx.idSeed}/group/${index}`,
    });
    messages.push(...expanded.messages);
    chordSizes.push(...expanded.chordSizes);
  });
  // Celery sets the size just before the last header message is sent; here it is the caller's
  // first step, before any message of this expansion is published.
  if (options.chord != null && members.length > 0) {
    chordSizes.unshift({ groupId, size: members.reduce((sum, m) => sum + chordSizeOf(m), 0) });
  }
  return { id: groupId, messages, chordSizes };
}

/**
 * Celery's `_chord.run`: the body frozen with its id, embedded in every header part as
 * `embed.chord`; the header published as a group. An empty header sends the body at once with
 * an empty list, as Celery does.
 */
export function expandChord(sig: SignatureDict, ctx: ExpandContext): Expansion {
  const chordArgs = sig.immutable || ctx.args.length === 0 ? sig.args : [...ctx.args, ...sig.args];
  const merged = mergeSignature(sig, [], {}, ctx.options);
  const { task_id, ...options } = merged.options;
  const header = chordHeader(sig);
  const body = part(sig.kwargs.body, `${sig.task}.kwargs.body`);
  const bodyId = optionId(body) ?? (typeof task_id === 'string' ? task_id : null);
  const frozenBody: SignatureDict = {
    ...body,
    options: {
      ...body.options,
      ...options,
      task_id: bodyId ?? deterministicId(ctx.idSeed),
    },
  };
  const id = frozenBody.options.task_id as string;
  if (header.members.length === 0) {
    return expand(frozenBody, { ...ctx, args: [[]], kwargs: {}, options: {} });
  }
  const { chain: _chain, chord: _chord, link: _link, link_error: _linkError, ...rest } = options;
  const headerGroup = group(...header.members);
  const expansion = expandGroup(
    { ...headerGroup, options: header.options },
    {
      ...ctx,
      args: chordArgs,
      // Celery's `_chord.run` hands the header its partial args but no kwargs.
      kwargs: {},
      options: {
        ...rest,
        task_id: stringOption(header.options.task_id) ?? deterministicId(`${ctx.idSeed}/chord`),
        chord: signatureJson(frozenBody),
      },
      idSeed: `${ctx.idSeed}/chord`,
    },
  );
  return { id, messages: expansion.messages, chordSizes: expansion.chordSizes };
}

/**
 * A chord's header members and the header group's own options: `kwargs.header` is a list of
 * signatures (what `chord([...], body)` writes) or a group dict (a frozen chord in a chain).
 */
export function chordHeader(sig: SignatureDict): { members: SignatureDict[]; options: JsonObject } {
  const header = sig.kwargs.header;
  if (Array.isArray(header)) {
    return {
      members: header.map((h, i) => part(h, `${sig.task}.kwargs.header[${i}]`)),
      options: {},
    };
  }
  const dict = part(header, `${sig.task}.kwargs.header`);
  return dict.subtask_type === 'group'
    ? { members: unrollGroup(dict), options: dict.options }
    : { members: [dict], options: {} };
}

/** Members of a group, nested groups flattened (Celery's `_freeze_unroll`). */
export function unrollGroup(sig: SignatureDict): SignatureDict[] {
  const tasks = sig.kwargs.tasks;
  const list = Array.isArray(tasks) ? tasks : [];
  return list.flatMap((item, index) => {
    const member = part(item, `${sig.task}.kwargs.tasks[${index}]`);
    return member.subtask_type === 'group' ? unrollGroup(member) : [member];
  });
}

/** How many results a part adds to a chord (Celery's `_chord._descend`). */
export function chordSizeOf(sig: SignatureDict): number {
  if (sig.subtask_type === 'group') return unrollGroup(sig).reduce((n, m) => n + chordSizeOf(m), 0);
  if (sig.subtask_type === 'chord') return chordSizeOf(part(sig.kwargs.body, 'body'));
  if (sig.subtask_type === 'chain') {
    const steps = Array.isArray(sig.kwargs.tasks) ? sig.kwargs.tasks : [];
    for (let i = steps.length - 1; i >= 0; i--) {
      const size = chordSizeOf(part(steps[i], `tasks[${i}]`));
      if (size > 0) return size;
    }
    return 0;
  }
  return 1;
}

/**
 * True when applying `sig` needs a result backend: it is or contains a chord with a header, or a
 * chain in which a group is followed by another step (Celery turns that into a chord).
 */
export function needsResultBackend(sig: SignatureDict): boolean {
  const kids = (list: JsonValue | undefined) =>
    (Array.isArray(list) ? list : []).map((item, i) => part(item, `tasks[${i}]`));
  if (sig.subtask_type === 'chord') {
    const header = chordHeader(sig);
    return header.members.length > 0 || needsResultBackend(part(sig.kwargs.body, 'body'));
  }
  if (sig.subtask_type === 'group') return kids(sig.kwargs.tasks).some(needsResultBackend);
  if (sig.subtask_type === 'chain') {
    const steps = kids(sig.kwargs.tasks);
    return steps.some(
      (step, i) =>
        needsResultBackend(step) || (step.subtask_type === 'group' && i < steps.length - 1),
    );
  }
  return false;
}
