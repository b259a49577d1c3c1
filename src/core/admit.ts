/**
 * Admission: whether a received message may run at all, decided once, before anything is
 * invoked. The worker admits what it receives (so no function is invoked for nothing) and
 * `runMessage` admits what it is handed (a task function may be invoked directly), both through
 * {@link admitMessage}.
 *
 * Order, as Celery's worker: expired → dead letter; eta ahead → park until then; unknown task →
 * dead letter; a body over the task's `maxArgumentBytes` → dead letter. Then ours: a workflow
 * (`link`, `link_error`, `chain`, `chord`) that cannot be honoured here → dead letter
 * `unsupported-workflow`, before running, so a workflow is never half-run.
 */
import { type DeadLetterReason, deadLetterReason } from './dead-letter.js';
import { PayloadTooLargeError } from './errors.js';
import type { TaskMessage } from './message.js';
import type { Registry } from './registry.js';
import type { RunOutcome } from './run-task.js';
import type { Task } from './task.js';
import { serializeBody } from './wire.js';
import { workflowRefusal } from './workflow-check.js';

/** What admission decided: run it with `task`, or its outcome without running. */
export type Admission =
  | { readonly kind: 'run'; readonly task: Task }
  | {
      readonly kind: 'settle';
      readonly outcome: Extract<RunOutcome, { kind: 'dead' | 'not-due' }>;
    };

/** What admission knows about the worker. */
export interface AdmitOptions {
  /**
   * A result backend is configured: chord parts and chords sent as continuations can be
   * honoured. @defaultValue false
   */
  readonly results?: boolean;
}

/**
 * Admits `message` at time `now`.
 *
 * A body over the task's `maxArgumentBytes` (the limit our producers are held to) is refused as
 * it would be at publish time: in a task function it would also fail the invoke of every
 * neighbour in its batch (Lambda refuses payloads over 6 MB).
 */
export function admitMessage(
  registry: Registry,
  message: TaskMessage,
  now: number,
  options: AdmitOptions = {},
): Admission {
  if (message.expires && message.expires.getTime() <= now) {
    const detail = `expired at ${message.expires.toISOString()}`;
    return dead(deadLetterReason(message, 'expired', detail));
  }
  if (message.eta && message.eta.getTime() > now) {
    return { kind: 'settle', outcome: { kind: 'not-due', dueAt: message.eta } };
  }
  const lookup = registry.lookup(message.task);
  if (lookup.kind === 'unregistered') {
    const { error } = lookup;
    return dead(deadLetterReason(message, 'unknownTask', error.message, error));
  }
  const limit = lookup.task.options.maxArgumentBytes;
  const bytes = Buffer.byteLength(serializeBody(message), 'utf8');
  if (bytes > limit) {
    const error = new PayloadTooLargeError(lookup.task.name, bytes, limit);
    return dead(deadLetterReason(message, 'invalidArguments', error.message, error));
  }
  const refusal = workflowRefusal(message.embed, { results: options.results ?? false });
  if (refusal) return dead(deadLetterReason(message, 'unsupportedWorkflow', refusal));
  return { kind: 'run', task: lookup.task };
}

function dead(reason: DeadLetterReason): Admission {
  return { kind: 'settle', outcome: { kind: 'dead', reason, durationMs: 0 } };
}
