/**
 * Running one task message: the part of a worker that does not depend on where it runs (a Lambda
 * per-task handler, the long-lived local worker, a test). It admits ({@link admitMessage}), runs,
 * and says what the run came to; `settlementFor` says how the message is settled, and the caller
 * talks to the broker.
 *
 * Order, as Celery's worker: admission (expired, eta ahead, unknown task, too large, a workflow we
 * cannot honour); arguments checked against the schema; run with the time limits; the result
 * encoded when a workflow or a backend needs it; then the retry decision.
 */
import { admitMessage } from './admit.js';
import { type DeadLetterReason, deadLetterReason } from './dead-letter.js';
import { InvalidConfigError, toError } from './errors.js';
import type { JsonValue } from './json.js';
import type { TaskMessage } from './message.js';
import type { OnceStore } from './once-store.js';
import type { Registry } from './registry.js';
import { decideRetry } from './retry-policy.js';
import { createTaskContext, type Task } from './task.js';
import { encodeResult, workflowNeedsResult } from './task-result.js';
import { effectiveTimeLimits, runWithLimits } from './time-limits.js';
import { runWithTraceContext, traceContextOf } from './trace-context.js';

/** What running a message came to. */
export type RunOutcome =
  | {
      readonly kind: 'succeeded';
      readonly result: unknown;
      readonly durationMs: number;
      /** The result as JSON, when it is needed (see `RunOptions.keepResults`). */
      readonly resultJson?: JsonValue;
    }
  | { readonly kind: 'ignored'; readonly error: Error; readonly durationMs: number }
  | {
      readonly kind: 'retry';
      /** When the retry is due (`settlementFor` builds the retry message). */
      readonly dueAt: Date;
      readonly error: Error;
      readonly durationMs: number;
    }
  /**
   * Not run: an `atMostOnce` task whose attempt was started before, or an `idempotent` task whose
   * id already succeeded. Settled as done.
   */
  | {
      readonly kind: 'duplicate';
      readonly why: 'at-most-once' | 'already-done';
      readonly durationMs: number;
    }
  /** Its eta is still ahead: not run; park it again until then. */
  | { readonly kind: 'not-due'; readonly dueAt: Date }
  | {
      readonly kind: 'dead';
      readonly reason: DeadLetterReason;
      /** Set when the task ran and failed. */
      readonly error?: Error;
      readonly durationMs: number;
    };

/** Options of {@link runMessage}. */
export interface RunOptions {
  /** Current time. @defaultValue Date.now */
  readonly now?: () => number;
  /**
   * Milliseconds this run may take before its host stops it (Lambda's remaining time less a
   * safety margin). It caps the hard time limit: the run ends then with `TimeLimitExceeded`.
   * @defaultValue no limit
   */
  readonly remainingTimeMs?: () => number;
  /** Aborts the run from outside (shutdown). */
  readonly signal?: AbortSignal;
  /** Random source for backoff jitter. @defaultValue Math.random */
  readonly random?: () => number;
  /** Where `atMostOnce` and `idempotent` tasks record their runs. Required if any task is one. */
  readonly store?: OnceStore;
  /**
   * Encode every result as JSON (a result backend stores them). Results a workflow continues
   * from are encoded anyway. @defaultValue false
   */
  readonly keepResults?: boolean;
  /**
   * A result backend is configured: chord parts and chord continuations can be honoured. Without
   * one they are refused at admission. @defaultValue false
   */
  readonly results?: boolean;
}

/** The once-store keys of a run: its attempt (atMostOnce) and its completion (idempotent). */
function onceKeys(task: Task, message: TaskMessage): { attempt?: string; done?: string } | null {
  if (!task.options.atMostOnce && !task.options.idempotent) return null;
  return {
    ...(task.options.atMostOnce
      ? { attempt: `_sc.once.${task.name}.${message.id}.${message.retries}` }
      : {}),
    ...(task.options.idempotent ? { done: `_sc.done.${task.name}.${message.id}` } : {}),
  };
}

/**
 * Runs one decoded message against the registry and returns its outcome. Never throws for
 * anything the task does: every error becomes an outcome. The run is in the trace its message
 * came with: what the task publishes carries that trace on.
 *
 * @example
 * const outcome = await runMessage(registry, message);
 * await broker.settle([{ delivery, settlement: settlementFor(outcome, message) }]);
 */
export function runMessage(
  registry: Registry,
  message: TaskMessage,
  options: RunOptions = {},
): Promise<RunOutcome> {
  return runWithTraceContext(traceContextOf(message), () => runOne(registry, message, options));
}

async function runOne(
  registry: Registry,
  message: TaskMessage,
  options: RunOptions,
): Promise<RunOutcome> {
  const now = options.now ?? Date.now;
  const started = now();
  const elapsed = () => now() - started;
  const dead = (reason: DeadLetterReason, error?: Error): RunOutcome => ({
    kind: 'dead',
    reason,
    ...(error ? { error } : {}),
    durationMs: elapsed(),
  });

  const admission = admitMessage(registry, message, started, { results: options.results ?? false });
  if (admission.kind === 'settle') return admission.outcome;
  const { task } = admission;
  const parsed = task.parseArguments(message.args, message.kwargs);
  if (!parsed.ok) {
    const { error } = parsed;
    return dead(deadLetterReason(message, 'invalidArguments', error.message, error), error);
  }

  const once = onceKeys(task, message);
  if (once) {
    const store = options.store;
    if (!store) {
      throw new InvalidConfigError(`task ${task.name}`, [
        {
          path: 'store',
          message: 'atMostOnce / idempotent tasks need a once store (Redis) in the runner options',
        },
      ]);
    }
    if (once.done && (await store.exists(once.done))) {
      return { kind: 'duplicate', why: 'already-done', durationMs: elapsed() };
    }
    if (once.attempt && !(await store.claim(once.attempt, task.options.onceTtl))) {
      return { kind: 'duplicate', why: 'at-most-once', durationMs: elapsed() };
    }
  }

  let thrown: unknown;
  try {
    const result = await runWithLimits(
      task.name,
      effectiveTimeLimits(message.timeLimit, task.options),
      options,
      (signal, remainingTimeMs) =>
        task.handler(
          parsed.kwargs,
          createTaskContext(message, parsed.args, { signal, remainingTimeMs }),
        ),
    );
    let resultJson: JsonValue | undefined;
    if (options.keepResults || workflowNeedsResult(message)) {
      // Before the done claim: a result that cannot be passed on fails the task, and a replay
      // of the dead letter must run it again, not find it done.
      const encoded = encodeResult(task.name, result, task.options.maxArgumentBytes);
      if (!encoded.ok) {
        const { error } = encoded;
        const detail = `${error.name}: ${error.message}`;
        return dead(deadLetterReason(message, 'notRetryable', detail, error), error);
      }
      resultJson = encoded.value;
    }
    if (once?.done) await options.store?.claim(once.done, task.options.onceTtl);
    return {
      kind: 'succeeded',
      result,
      durationMs: elapsed(),
      ...(resultJson !== undefined ? { resultJson } : {}),
    };
  } catch (error) {
    thrown = error;
  }

  const decision = decideRetry({
    thrown,
    retries: message.retries,
    policy: task.retryPolicy,
    task: task.name,
    now: new Date(now()),
    ...(options.random ? { random: options.random } : {}),
  });
  switch (decision.kind) {
    case 'ignore':
      return { kind: 'ignored', error: decision.error, durationMs: elapsed() };
    case 'retry': {
      const dueAt = new Date(now() + decision.delayMs);
      return { kind: 'retry', dueAt, error: decision.error, durationMs: elapsed() };
    }
    case 'fail': {
      const code =
        decision.reason === 'excluded'
          ? 'excluded'
          : decision.reason === 'not-retryable'
            ? 'notRetryable'
            : 'maxRetriesExceeded';
      const detail = `${decision.error.name}: ${decision.error.message}`;
      return dead(deadLetterReason(message, code, detail, decision.error), decision.error);
    }
  }
}

/** Throws `toError(reason)` if `signal` is aborted: a helper for long-running handlers. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw toError(signal.reason);
}
