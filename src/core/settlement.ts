/**
 * Settlement: how a held message leaves the consumer once its outcome is known. Every path that
 * settles (the worker, the Amazon MQ dispatcher, a test) gets it from here, so a retry message,
 * a dead-letter record or a workflow's continuations are built in one place.
 *
 * A settlement may carry {@link Effects}: messages to publish *before* the held message is
 * settled (`performEffects` in the worker), so a crash in between repeats them (same ids) and
 * never loses them. Broker adapters' `settle` ignores them.
 */
import type { ChordSize } from './canvas.js';
import { type ContinuationOptions, continuationsFor, WorkflowError } from './continuations.js';
import {
  type DeadLetterReason,
  deadLetterForDecodeFailure,
  deadLetterReason,
} from './dead-letter.js';
import { createRetryMessage, type TaskMessage } from './message.js';
import type { OutcomeRecord } from './result-backend.js';
import { outcomeState } from './result-meta.js';
import type { TaskOutcome } from './task-outcome.js';
import type { DecodeFailure } from './wire.js';

/** What must happen before a message is settled: its workflow's next messages. */
export interface Effects {
  /** Continuations (callbacks, next chain step, errbacks), published before the settle. */
  readonly publish: readonly TaskMessage[];
  /** Sizes of chords among them, stored in the result backend before they are published. */
  readonly chordSizes: readonly ChordSize[];
  /** The outcome to store in the result backend (and count as a chord part), after publishing. */
  readonly record?: OutcomeRecord;
}

/** Options of {@link settlementFor}: how to continue a workflow, and whether results are stored. */
export interface SettlementOptions extends ContinuationOptions {
  /**
   * A result backend is configured: outcomes are recorded. `ignoreResult` says which tasks store
   * nothing (their chord parts are still counted).
   */
  readonly results?: { readonly ignoreResult: (task: string) => boolean } | undefined;
}

/** How a held message is settled. */
export type Settlement =
  /** Its outcome is final (success, ignored, or failure recorded elsewhere): remove it. */
  | { readonly kind: 'done'; readonly effects?: Effects }
  /**
   * Replace it by `message` (a retry: same id, `retries + 1`; or the same message parked until its
   * eta), delivered to its queue at `dueAt`. The swap is atomic: never both, never neither.
   */
  | {
      readonly kind: 'retry-later';
      readonly message: TaskMessage;
      readonly dueAt: Date;
      readonly effects?: Effects;
    }
  /** Move it to its queue's dead-letter store with the reason. */
  | { readonly kind: 'dead-letter'; readonly reason: DeadLetterReason; readonly effects?: Effects };

/** Header counting failed attempts to run a message (not task retries). */
export const INVOKE_FAILURES_HEADER = 'x-sc-invoke-failures';

/**
 * How a message is settled after its outcome: done for success and ignore, a delayed retry (same
 * id, `retries + 1`), the same message parked until its eta, or the dead-letter store. Given
 * `workflow` (how to route continuations), a success or a final failure carries the message's
 * continuations as {@link Effects}; without it, none are computed (callers that only settle).
 */
export function settlementFor(
  outcome: TaskOutcome,
  message: TaskMessage,
  workflow?: SettlementOptions,
): Settlement {
  const settlement = baseSettlement(outcome, message);
  if (!workflow) return settlement;
  const record = workflow.results && outcomeState(outcome) !== null;
  if (!hasWorkflow(message) && !record) return settlement;
  let effects: Effects;
  try {
    const continuations = hasWorkflow(message)
      ? continuationsFor(outcome, message, workflow)
      : { messages: [], chordSizes: [] };
    effects = { publish: continuations.messages, chordSizes: continuations.chordSizes };
    if (record && workflow.results) {
      const store = !(message.ignoreResult || workflow.results.ignoreResult(message.task));
      const children = continuations.messages.map((next) => next.id);
      effects = { ...effects, record: { message, outcome, store, children } };
    }
  } catch (error) {
    // Admission refuses such messages before they run; one that got past it (a task function
    // handed a message directly) still must not settle as if its workflow went on.
    if (!(error instanceof WorkflowError)) throw error;
    return {
      kind: 'dead-letter',
      reason: deadLetterReason(message, 'unsupportedWorkflow', error.message),
    };
  }
  if (effects.publish.length === 0 && effects.chordSizes.length === 0 && !effects.record) {
    return settlement;
  }
  return { ...settlement, effects };
}

function hasWorkflow(message: TaskMessage): boolean {
  const { callbacks, errbacks, chain } = message.embed;
  return (callbacks?.length ?? 0) + (errbacks?.length ?? 0) + (chain?.length ?? 0) > 0;
}

function baseSettlement(outcome: TaskOutcome, message: TaskMessage): Settlement {
  switch (outcome.kind) {
    case 'succeeded':
    case 'ignored':
    case 'duplicate':
      return { kind: 'done' };
    case 'retry': {
      const dueAt = new Date(outcome.dueAt);
      // The task ran: failures to run it before no longer count toward the poison cap.
      const { [INVOKE_FAILURES_HEADER]: _failures, ...extraHeaders } = message.extraHeaders;
      const retry = { ...createRetryMessage(message, dueAt), extraHeaders };
      return { kind: 'retry-later', message: retry, dueAt };
    }
    case 'not-due':
      return { kind: 'retry-later', message, dueAt: new Date(outcome.dueAt) };
    case 'dead':
      return { kind: 'dead-letter', reason: outcome.reason };
  }
}

/** Dead-letters an undecodable message with the decoder's reason. */
export function settlementForInvalid(failure: DecodeFailure): Settlement {
  return { kind: 'dead-letter', reason: deadLetterForDecodeFailure(failure) };
}

/** Puts a message back as it is, due now: it was taken but never run (shutdown, throttling). */
export function settlementForRelease(message: TaskMessage, now: number): Settlement {
  return { kind: 'retry-later', message, dueAt: new Date(now) };
}

/** What {@link settlementForInvokeFailure} decided. */
export interface InvokeFailure {
  readonly settlement: Settlement;
  /** Failed attempts so far, this one included. */
  readonly failures: number;
  /** True once the poison cap is reached: the message is dead-lettered. */
  readonly dead: boolean;
}

/**
 * A message could not be run at all (its function could not be invoked, timed out or crashed):
 * try the same message again shortly (1 s, 2 s, 4 s … up to 60 s) without touching its task
 * retries, or dead-letter it as poison once `cap` failed attempts are counted in its
 * {@link INVOKE_FAILURES_HEADER}.
 */
export function settlementForInvokeFailure(
  message: TaskMessage,
  error: Error,
  cap: number,
  now: number,
): InvokeFailure {
  const previous = Number(message.extraHeaders[INVOKE_FAILURES_HEADER] ?? 0);
  const failures = (Number.isInteger(previous) && previous > 0 ? previous : 0) + 1;
  const detail = `${error.name}: ${error.message}`;
  if (failures >= cap) {
    const why = `could not be run ${failures} times; last: ${detail}`;
    const reason = deadLetterReason(message, 'poison', why, error);
    return { settlement: { kind: 'dead-letter', reason }, failures, dead: true };
  }
  const dueAt = new Date(now + Math.min(60_000, 1000 * 2 ** (failures - 1)));
  const again = {
    ...message,
    extraHeaders: { ...message.extraHeaders, [INVOKE_FAILURES_HEADER]: failures },
  };
  return { settlement: { kind: 'retry-later', message: again, dueAt }, failures, dead: false };
}
