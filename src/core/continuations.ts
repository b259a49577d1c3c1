/**
 * What a finished task sends next, exactly as a Celery 5 worker does it (`celery/app/trace.py`
 * `build_tracer`, `celery/backends/base.py` `_call_task_errbacks`):
 *
 * - on success, each `callbacks` signature with the result prepended to its args (an immutable
 *   one keeps its own): one callback alone; several as one group (group-typed ones each on their
 *   own), then the next `chain` step, popped from the end, with the rest of the chain carried on;
 *   `parent_id` is this task, `root_id` its root;
 * - on final failure, the `errbacks` as one group with args `(task_id,)`: what Celery does for
 *   errbacks it cannot call in-process (ours never can: they may be Python);
 * - on a retry, nothing (Celery's `call_errbacks=False`).
 *
 * Celery gives each continuation a fresh uuid; ours derive from the finished message's id, so a
 * crash between publishing them and settling the message republishes the same ids
 * (at-least-once, never lost, and a result waiter sees one id). A signature naming a task nobody
 * here declares is sent anyway, to its own queue or the route's, as Celery's `send_task`.
 * Continuations keep the finished message's trace context (`trace-context.ts`).
 */
import { type ApplyOptions, applySignature, type ChordSize, type Expansion } from './canvas.js';
import { DEAD_LETTER_REASONS, type DeadLetterReasonCode } from './dead-letter.js';
import { CeleryError } from './errors.js';
import type { JsonValue } from './json.js';
import type { TaskMessage } from './message.js';
import { parseSignature, type SignatureDict } from './signature.js';
import type { TaskOutcome } from './task-outcome.js';
import { traceContextOf, withTraceContext } from './trace-context.js';

/** The messages to publish after a task, and chord sizes to store before them. */
export interface Continuations {
  readonly messages: readonly TaskMessage[];
  readonly chordSizes: readonly ChordSize[];
}

/** Options of {@link continuationsFor}. */
export interface ContinuationOptions {
  /** Queue of a signature without `queue`/`routing_key`: `routeFor(registry)`. */
  readonly route: (task: string) => string;
  /** Current time, for `countdown` options. @defaultValue now */
  readonly now?: Date;
}

/** Nothing to send. */
export const NO_CONTINUATIONS: Continuations = Object.freeze({ messages: [], chordSizes: [] });

/**
 * Final failures after which Celery calls errbacks: the task was run (or was refused its
 * arguments) and failed. An expired task is revoked, an unknown one `NotRegistered`, an
 * undecodable or poison message never ran: Celery calls no errbacks for those, nor do we.
 */
const ERRBACK_REASONS: ReadonlySet<DeadLetterReasonCode> = new Set([
  DEAD_LETTER_REASONS.invalidArguments,
  DEAD_LETTER_REASONS.excluded,
  DEAD_LETTER_REASONS.notRetryable,
  DEAD_LETTER_REASONS.maxRetriesExceeded,
]);

/**
 * The continuation messages of `message` after `outcome`.
 *
 * @throws WorkflowError when an entry of the embed cannot be expanded (admission refuses such
 *   messages first, so only a message that bypassed admission gets here)
 */
export function continuationsFor(
  outcome: TaskOutcome,
  message: TaskMessage,
  options: ContinuationOptions,
): Continuations {
  const root = message.rootId ?? message.id;
  const base = {
    parentId: message.id,
    rootId: root,
    route: options.route,
    ...(options.now ? { now: options.now } : {}),
  };
  const parts: Continuations[] = [];
  if (outcome.kind === 'succeeded' || outcome.kind === 'ignored') {
    // An ignored failure (Sentry's `retry.ignore`) is a success whose result is null.
    const result: JsonValue = outcome.kind === 'succeeded' ? (outcome.result ?? null) : null;
    const callbacks = signaturesOf(message.embed.callbacks, 'embed.callbacks');
    const seed = `${message.id}/callbacks`;
    if (callbacks.length === 1) {
      const [only] = callbacks as [SignatureDict];
      parts.push(apply(only, { ...base, args: [result], idSeed: `${seed}/0` }));
    } else if (callbacks.length > 1) {
      const plain: SignatureDict[] = [];
      callbacks.forEach((sig, index) => {
        if (sig.subtask_type !== 'group') plain.push(sig);
        else parts.push(apply(sig, { ...base, args: [result], idSeed: `${seed}/${index}` }));
      });
      if (plain.length > 0) {
        parts.push(apply(groupOf(plain), { ...base, args: [result], idSeed: seed }));
      }
    }
    const chain = signaturesOf(message.embed.chain, 'embed.chain');
    const next = chain.at(-1);
    if (next) {
      // The rest goes on as it came (unparsed): unknown keys survive for the steps after.
      const rest = (message.embed.chain ?? []).slice(0, -1);
      parts.push(
        apply(next, {
          ...base,
          args: [result],
          chain: rest,
          idSeed: `${message.id}/chain`,
        }),
      );
    }
  } else if (outcome.kind === 'dead' && ERRBACK_REASONS.has(outcome.reason.reason)) {
    const errbacks = signaturesOf(message.embed.errbacks, 'embed.errbacks');
    if (errbacks.length > 0) {
      // Celery: group(errbacks).apply_async((task_id,), parent_id=task_id, root_id=root).
      const idSeed = `${message.id}/errbacks`;
      parts.push(apply(groupOf(errbacks), { ...base, args: [message.id], idSeed }));
    }
  }
  if (parts.length === 0) return NO_CONTINUATIONS;
  // A workflow stays one trace: each continuation carries the finished message's context (its
  // own, from a signature's `options.headers`, wins), and is dated for queue latency.
  const trace = traceContextOf(message);
  const sentAt = options.now ?? new Date();
  return {
    messages: parts.flatMap((part) => part.messages).map((m) => withTraceContext(m, trace, sentAt)),
    chordSizes: parts.flatMap((part) => part.chordSizes),
  };
}

/** An embed entry that cannot be expanded reached the continuation step. */
export class WorkflowError extends CeleryError {
  override name = 'WorkflowError' as const;
}

function apply(sig: SignatureDict, options: ApplyOptions): Expansion {
  try {
    return applySignature(sig, options);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new WorkflowError(`${sig.task}: ${why}`, { cause: error });
  }
}

function signaturesOf(list: readonly JsonValue[] | null, path: string): SignatureDict[] {
  return (list ?? []).map((entry, index) => {
    const parsed = parseSignature(entry, `${path}[${index}]`);
    if (!parsed.ok) throw new WorkflowError(parsed.reason);
    return parsed.signature;
  });
}

/** Celery's `group(sigs)` as its dict, with no id of its own: the seed gives it one. */
function groupOf(members: readonly SignatureDict[]): SignatureDict {
  return {
    task: 'celery.group',
    args: [],
    kwargs: { tasks: members.map((member) => ({ ...member }) as unknown as JsonValue) },
    options: {},
    subtask_type: 'group',
    immutable: false,
  };
}
