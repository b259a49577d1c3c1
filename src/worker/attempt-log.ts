/**
 * The structured record of one attempt: what every place a task runs logs per message (the task
 * function through Powertools Logger, the CLI worker and `npm start` as a JSON line), so a query
 * over any of them reads the same fields. Pure: the same outcome always gives the same record.
 *
 * It never holds argument values or credentials: not `args`, `kwargs` nor their reprs, only the
 * message's identity, timing, outcome and error. An error message is the task's own words, cut
 * to {@link ERROR_MESSAGE_MAX} characters.
 */

import { SENT_HEADER, traceContextOf, traceIdsOf } from '../core/trace-context.js';
import type { DecodeResult } from '../core/wire.js';
import type { DispatchOutcome } from './events.js';

/** Longest error message a record carries. */
export const ERROR_MESSAGE_MAX = 1000;

/** One attempt, as logged. Field names follow Powertools' snake_case keys. */
export interface AttemptRecord {
  readonly task: string | null;
  readonly id: string | null;
  readonly queue: string;
  /** The message's `retries` header (0 on the first run). */
  readonly retries: number | null;
  /** The outcome's kind: `succeeded`, `retry`, `dead`, `ignored`, `invalid`… */
  readonly outcome: DispatchOutcome['kind'];
  /** How long the run took, when it ran. */
  readonly duration_ms: number | null;
  /** From the eta (or, without one, the send time) to the start of the run, when both are known. */
  readonly delay_ms: number | null;
  /** The dead-letter reason code, for a dead-lettered message. */
  readonly reason: string | null;
  readonly error_type: string | null;
  readonly error_message: string | null;
  readonly parent_id: string | null;
  readonly root_id: string | null;
  /** The trace the producer recorded (32 hex, W3C form). */
  readonly trace_id: string | null;
  /** The producer's span, which this run links to. */
  readonly parent_span_id: string | null;
}

/** What a record is built from: a settled message (a `WorkerEvent` has this shape). */
export interface AttemptInput {
  readonly queue: string;
  readonly delivery: { readonly result: DecodeResult };
  readonly outcome: DispatchOutcome;
}

/** The level an attempt is logged at: failures that lose a message are errors. */
export type AttemptLevel = 'info' | 'warn' | 'error';

/**
 * The record of one attempt.
 *
 * @param settledAt - when the outcome was known: the run started `duration_ms` before it
 */
export function attemptRecord(input: AttemptInput, settledAt: Date): AttemptRecord {
  const { result } = input.delivery;
  const message = result.ok ? result.message : null;
  const { outcome } = input;
  const duration = 'durationMs' in outcome ? outcome.durationMs : null;
  const trace = message ? traceIdsOf(traceContextOf(message)) : null;
  const error = errorOf(outcome);
  return {
    task: message?.task ?? (result.ok ? null : result.task),
    id: message?.id ?? (result.ok ? null : result.id),
    queue: input.queue,
    retries: message?.retries ?? null,
    outcome: outcome.kind,
    duration_ms: duration,
    delay_ms:
      message && duration !== null ? delayOf(message, settledAt.getTime() - duration) : null,
    reason: outcome.kind === 'dead' ? outcome.reason.reason : null,
    error_type: error.type,
    error_message: error.message === null ? null : error.message.slice(0, ERROR_MESSAGE_MAX),
    parent_id: message?.parentId ?? null,
    root_id: message?.rootId ?? null,
    trace_id: trace?.traceId ?? null,
    parent_span_id: trace?.parentSpanId ?? null,
  };
}

/** The level of an outcome: a retry warns, a lost message (dead, invalid, poison) is an error. */
export function attemptLevel(outcome: DispatchOutcome): AttemptLevel {
  switch (outcome.kind) {
    case 'retry':
    case 'released':
      return 'warn';
    case 'dead':
    case 'invalid':
      return 'error';
    case 'invoke-failed':
      return outcome.dead ? 'error' : 'warn';
    default:
      return 'info';
  }
}

/** The `message` of an attempt's log line: `task <name> <outcome>`. */
export function attemptMessage(record: AttemptRecord): string {
  return `task ${record.task ?? '?'} ${record.outcome}`;
}

/**
 * The record as one JSON line with Powertools' leading keys (`level`, `message`, `timestamp`),
 * for the CLI's `--log-format json`: the same shape the task function logs in Lambda.
 */
export function attemptJsonLine(input: AttemptInput, settledAt: Date): string {
  const record = attemptRecord(input, settledAt);
  const line = {
    level: attemptLevel(input.outcome).toUpperCase(),
    message: attemptMessage(record),
    timestamp: settledAt.toISOString(),
    ...record,
  };
  return `${JSON.stringify(line)}\n`;
}

function delayOf(
  message: { readonly eta: Date | null; readonly extraHeaders: Readonly<Record<string, unknown>> },
  startedAt: number,
): number | null {
  const sent = message.extraHeaders[SENT_HEADER];
  const from = message.eta?.getTime() ?? (typeof sent === 'string' ? Date.parse(sent) : Number.NaN);
  return Number.isFinite(from) ? Math.round(startedAt - from) : null;
}

function errorOf(outcome: DispatchOutcome): {
  readonly type: string | null;
  readonly message: string | null;
} {
  switch (outcome.kind) {
    case 'retry':
      return { type: outcome.errorType, message: outcome.errorMessage };
    case 'ignored':
      return { type: outcome.errorType, message: null };
    case 'dead':
      return {
        type: outcome.reason.errorType ?? null,
        message: outcome.reason.errorMessage ?? outcome.reason.detail,
      };
    case 'invalid':
    case 'invoke-failed':
    case 'released':
      return { type: null, message: outcome.detail };
    default:
      return { type: null, message: null };
  }
}
