/**
 * The live lines of `npm start`: one per task outcome (time, task, id, attempt, outcome,
 * duration), whichever local path settled the message (the Redis poller or the Amazon MQ feeder).
 */
import type { DecodeResult } from '../core/wire.js';
import type { DispatchOutcome, WorkerEvent } from '../worker/dispatch.js';

/** One settled message, as `npm start` reports it. */
export interface OutcomeLine {
  /** Task name; `?` when the message could not be read far enough. */
  readonly task: string;
  /** Task id; `?` when unknown. */
  readonly id: string;
  /** Which run this was: Celery's `retries` + 1 (`?` when unknown). */
  readonly attempt: number | null;
  /** What happened, in a few words. */
  readonly outcome: string;
  /** How long the task ran (or the batch took), when known. */
  readonly durationMs?: number;
}

/**
 * Formats a line: `10:57:01  ingest.save_event  <id>  attempt 1  succeeded  12 ms`.
 *
 * @param now - when it happened @defaultValue the current time
 */
export function formatOutcomeLine(line: OutcomeLine, now = new Date()): string {
  const time = now.toTimeString().slice(0, 8);
  const attempt = `attempt ${line.attempt ?? '?'}`;
  const duration = line.durationMs === undefined ? '' : `  ${Math.round(line.durationMs)} ms`;
  return `${time}  ${line.task.padEnd(18)} ${line.id}  ${attempt.padEnd(9)}  ${line.outcome}${duration}`;
}

/** Task, id and attempt of a delivery, as far as it could be decoded. */
export function identify(result: DecodeResult): Pick<OutcomeLine, 'task' | 'id' | 'attempt'> {
  if (result.ok) {
    const { task, id, retries } = result.message;
    return { task, id, attempt: retries + 1 };
  }
  return { task: result.task ?? '?', id: result.id ?? '?', attempt: null };
}

/** The line of a message the local poller settled. */
export function workerEventLine(event: WorkerEvent, now = Date.now()): OutcomeLine {
  const { outcome } = event;
  const line = { ...identify(event.delivery.result), outcome: describeOutcome(outcome, now) };
  return 'durationMs' in outcome ? { ...line, durationMs: outcome.durationMs } : line;
}

/**
 * An outcome in a few words: `succeeded`, `retry in 1.0s (StoreUnavailableError: …)`,
 * `dead-lettered: excluded (TypeError: …)`, `invoke failed (2/5), re-queued: …`.
 */
export function describeOutcome(outcome: DispatchOutcome, now = Date.now()): string {
  switch (outcome.kind) {
    case 'succeeded':
      return 'succeeded';
    case 'ignored':
      return `ignored (${outcome.errorType})`;
    case 'duplicate':
      return `skipped: ${outcome.why}`;
    case 'retry': {
      const seconds = Math.max(0, (Date.parse(outcome.dueAt) - now) / 1000).toFixed(1);
      return `retry in ${seconds}s (${outcome.errorType}: ${outcome.errorMessage})`;
    }
    case 'not-due':
      return `parked until ${outcome.dueAt} (eta)`;
    case 'dead':
      return `dead-lettered: ${outcome.reason.reason} (${outcome.reason.detail})`;
    case 'invalid':
      return `dead-lettered: invalid message (${outcome.detail})`;
    case 'invoke-failed':
      return outcome.dead
        ? `dead-lettered: poison after ${outcome.failures} failed invokes (${outcome.detail})`
        : `invoke failed (${outcome.failures}), re-queued: ${outcome.detail}`;
    case 'released':
      return `put back unrun: ${outcome.detail}`;
  }
}
