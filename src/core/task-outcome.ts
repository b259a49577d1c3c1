/**
 * What a run came to, in a form that crosses a wire: the per-task Lambda function returns these
 * to the dispatcher, which settles each message from them (and continues their workflows, hence
 * the result). Plain JSON: no `Error`, no `Date`.
 */
import type { DeadLetterReason } from './dead-letter.js';
import type { JsonValue } from './json.js';
import type { RunOutcome } from './run-task.js';

/** The outcome of one message, as JSON. */
export type TaskOutcome =
  | {
      readonly kind: 'succeeded';
      readonly durationMs: number;
      /**
       * The return value as JSON, present only when something needs it (a `link` or `chain` to
       * continue, a result backend): results travel in the invoke's answer, so they are not
       * carried for nothing. Held to the task's `maxArgumentBytes`.
       */
      readonly result?: JsonValue;
    }
  /** Sentry's `retry.ignore`: settled as a success whose result is `null`. */
  | { readonly kind: 'ignored'; readonly errorType: string; readonly durationMs: number }
  | {
      readonly kind: 'duplicate';
      readonly why: 'at-most-once' | 'already-done';
      readonly durationMs: number;
    }
  | {
      readonly kind: 'retry';
      /** When the retry is due, ISO 8601. */
      readonly dueAt: string;
      readonly errorType: string;
      readonly errorMessage: string;
      readonly durationMs: number;
    }
  | {
      readonly kind: 'not-due';
      /** The message's eta, ISO 8601. */
      readonly dueAt: string;
    }
  | { readonly kind: 'dead'; readonly reason: DeadLetterReason; readonly durationMs: number };

/** Turns a {@link RunOutcome} into its JSON form. */
export function toTaskOutcome(outcome: RunOutcome): TaskOutcome {
  switch (outcome.kind) {
    case 'succeeded':
      return {
        kind: 'succeeded',
        durationMs: outcome.durationMs,
        ...(outcome.resultJson !== undefined ? { result: outcome.resultJson } : {}),
      };
    case 'ignored':
      return { kind: 'ignored', errorType: outcome.error.name, durationMs: outcome.durationMs };
    case 'duplicate':
      return { kind: 'duplicate', why: outcome.why, durationMs: outcome.durationMs };
    case 'retry':
      return {
        kind: 'retry',
        dueAt: outcome.dueAt.toISOString(),
        errorType: outcome.error.name,
        errorMessage: outcome.error.message,
        durationMs: outcome.durationMs,
      };
    case 'not-due':
      return { kind: 'not-due', dueAt: outcome.dueAt.toISOString() };
    case 'dead':
      return { kind: 'dead', reason: outcome.reason, durationMs: outcome.durationMs };
  }
}
