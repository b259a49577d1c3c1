/**
 * Whether a message's workflow can be honoured here, decided before the task runs: a workflow
 * half-run (the task ran, its chain step could not be sent) is silent work loss, so a message
 * whose `callbacks`, `errbacks`, `chain` or `chord` we could not continue is refused at admission
 * and dead-lettered with the reason instead.
 *
 * Each entry is expanded once for trial, exactly as it would be after the run
 * (`applySignature`), so whatever would fail then fails now: an entry that is not a signature
 * dict, a subtask type we do not expand (`chunks`, `xmap`, `xstarmap` written as such), a `link`
 * on a group. (Celery 5.2 to 5.6 write `chunks`/`xmap`/`xstarmap` with `subtask_type` null, as
 * plain signatures of its built-in tasks `celery.chunks`/`celery.map`/`celery.starmap`: those
 * are sent on by name like any other, to the default queue, as a Celery worker does.) And
 * anything chord-shaped needs a result backend (a chord part records its result where the last
 * part finds it; a chord sent as a continuation stores its size first). Every chain step is
 * checked, not only the next one, so a chain is refused at its first step rather than midway.
 * The `link`/`link_error` options of a continuation travel on in its own message and are checked
 * by whoever receives it.
 */
import { applySignature } from './canvas.js';
import type { JsonValue } from './json.js';
import type { Embed } from './message.js';
import { parseSignature, SUPPORTED_SUBTASK_TYPES } from './signature.js';

/** What the check knows about the worker. */
export interface WorkflowCheckOptions {
  /** A result backend is configured (chords can be honoured). */
  readonly results: boolean;
}

/** Trial expansions route everything here; nothing is published. */
const TRIAL_ROUTE = () => 'trial';

/**
 * Why the workflow in `embed` cannot be honoured, one sentence naming the entry (as
 * `embed.chain[1]`), or `null` when it can.
 */
export function workflowRefusal(embed: Embed, options: WorkflowCheckOptions): string | null {
  const lists = [
    ['callbacks', embed.callbacks],
    ['errbacks', embed.errbacks],
    ['chain', embed.chain],
  ] as const;
  for (const [name, list] of lists) {
    if (list === null || list === undefined) continue;
    if (!Array.isArray(list)) return `embed.${name}: not a list of signatures`;
    for (const [index, entry] of list.entries()) {
      const refusal = entryRefusal(entry, `embed.${name}[${index}]`, options);
      if (refusal) return refusal;
    }
  }
  if (embed.chord !== null && embed.chord !== undefined) {
    if (!options.results) {
      return 'embed.chord: this task is a chord part, and chords need a result backend (none is configured)';
    }
    const parsed = parseSignature(embed.chord, 'embed.chord');
    if (!parsed.ok) return parsed.reason;
  }
  return null;
}

function entryRefusal(
  entry: JsonValue,
  path: string,
  options: WorkflowCheckOptions,
): string | null {
  const parsed = parseSignature(entry, path);
  if (!parsed.ok) return parsed.reason;
  const sig = parsed.signature;
  if (!SUPPORTED_SUBTASK_TYPES.has(sig.subtask_type)) {
    return `${path}: subtask_type '${sig.subtask_type}' (${sig.task}) is not supported; supported: plain signatures, chain, group, chord`;
  }
  let chords: number;
  try {
    const trial = applySignature(sig, { args: [null], idSeed: path, route: TRIAL_ROUTE });
    chords = trial.chordSizes.length;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return `${path} (${sig.task}, subtask_type ${sig.subtask_type ?? 'null'}): ${why}`;
  }
  if (chords > 0 && !options.results) {
    return `${path} (${sig.task}): contains a chord, and chords need a result backend (none is configured)`;
  }
  return null;
}
