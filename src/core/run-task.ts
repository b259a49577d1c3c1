/**
 * Running one task message: the part of a worker that does not depend on where it runs (a Lambda
 * per-task handler, the long-lived local worker, a test). It decides, runs, and says how the
 * message must be settled; the caller talks to the broker.
 *
 * Order, as Celery's worker: expired → discard; eta ahead → wait (here: park again); unknown
 * task → dead letter; arguments checked against the schema; run with the time limits; then the
 * retry decision.
 */
import { DEAD_LETTER_REASONS, type DeadLetterReason } from './dead-letter.js';
import { CeleryError, InvalidConfigError, toError } from './errors.js';
import { createRetryMessage, type TaskMessage } from './message.js';
import type { OnceStore } from './once-store.js';
import type { Registry } from './registry.js';
import { decideRetry } from './retry-policy.js';
import { createTaskContext, type Task } from './task.js';

/** The task ran past its hard time limit (Celery's `TimeLimitExceeded`). */
export class TimeLimitExceededError extends CeleryError {
  override name = 'TimeLimitExceeded' as const;

  constructor(task: string, seconds: number) {
    super(`task ${task} exceeded its time limit of ${seconds} s`);
  }
}

/** What running a message came to. */
export type RunOutcome =
  | { readonly kind: 'succeeded'; readonly result: unknown; readonly durationMs: number }
  | { readonly kind: 'ignored'; readonly error: Error; readonly durationMs: number }
  | {
      readonly kind: 'retry';
      /** The retry message: same id, `retries + 1`, `parent_id` = id. */
      readonly message: TaskMessage;
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
   * safety margin). The task's abort signal fires then. @defaultValue no limit
   */
  readonly remainingTimeMs?: () => number;
  /** Aborts the run from outside (shutdown). */
  readonly signal?: AbortSignal;
  /** Random source for backoff jitter. @defaultValue Math.random */
  readonly random?: () => number;
  /** Where `atMostOnce` and `idempotent` tasks record their runs. Required if any task is one. */
  readonly store?: OnceStore;
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
 * anything the task does: every error becomes an outcome.
 *
 * @example
 * const outcome = await runMessage(registry, message);
 * await broker.settle([{ delivery, settlement: settlementFor(outcome, message) }]);
 */
export async function runMessage(
  registry: Registry,
  message: TaskMessage,
  options: RunOptions = {},
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

  if (message.expires && message.expires.getTime() <= started) {
    return dead(reasonFor(message, 'expired', `expired at ${message.expires.toISOString()}`));
  }
  if (message.eta && message.eta.getTime() > started) {
    return { kind: 'not-due', dueAt: message.eta };
  }
  const lookup = registry.lookup(message.task);
  if (lookup.kind === 'unregistered') {
    return dead(reasonFor(message, 'unknownTask', lookup.error.message, lookup.error));
  }
  const { task } = lookup;
  const parsed = task.parseArguments(message.args, message.kwargs);
  if (!parsed.ok) {
    return dead(reasonFor(message, 'invalidArguments', parsed.error.message, parsed.error));
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
      task.options.timeLimit,
      task.options.softTimeLimit,
      options,
      (signal, remainingTimeMs) =>
        task.handler(
          parsed.kwargs,
          createTaskContext(message, parsed.args, { signal, remainingTimeMs }),
        ),
    );
    if (once?.done) await options.store?.claim(once.done, task.options.onceTtl);
    return { kind: 'succeeded', result, durationMs: elapsed() };
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
      return {
        kind: 'retry',
        message: createRetryMessage(message, dueAt),
        dueAt,
        error: decision.error,
        durationMs: elapsed(),
      };
    }
    case 'fail': {
      const code =
        decision.reason === 'excluded'
          ? 'excluded'
          : decision.reason === 'not-retryable'
            ? 'notRetryable'
            : 'maxRetriesExceeded';
      const detail = `${decision.error.name}: ${decision.error.message}`;
      return dead(reasonFor(message, code, detail, decision.error), decision.error);
    }
  }
}

function reasonFor(
  message: TaskMessage,
  code: keyof typeof DEAD_LETTER_REASONS,
  detail: string,
  error?: Error,
): DeadLetterReason {
  return {
    reason: DEAD_LETTER_REASONS[code],
    detail,
    task: message.task,
    id: message.id,
    retries: message.retries,
    ...(error ? { errorType: error.name, errorMessage: error.message } : {}),
  };
}

/**
 * Runs `work` with an abort signal that fires at the soft time limit, at the host's deadline or
 * on outside abort, and rejects with {@link TimeLimitExceededError} at the hard time limit.
 */
async function runWithLimits<T>(
  task: string,
  hardSeconds: number | undefined,
  softSeconds: number | undefined,
  options: RunOptions,
  work: (signal: AbortSignal, remainingTimeMs: () => number) => T | Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  const abort = (reason: unknown) => controller.abort(reason);
  const outside = options.signal;
  if (outside?.aborted) abort(outside.reason);
  const forward = () => abort(outside?.reason);
  outside?.addEventListener('abort', forward, { once: true });
  const startedAt = Date.now();
  const hostRemaining = options.remainingTimeMs;
  const remainingTimeMs = () => {
    const byHard =
      hardSeconds === undefined
        ? Number.POSITIVE_INFINITY
        : hardSeconds * 1000 - (Date.now() - startedAt);
    const byHost = hostRemaining ? hostRemaining() : Number.POSITIVE_INFINITY;
    return Math.max(0, Math.min(byHard, byHost));
  };
  if (softSeconds !== undefined) {
    timers.push(
      setTimeout(() => abort(new Error(`soft time limit of ${softSeconds} s`)), softSeconds * 1000),
    );
  }
  if (hostRemaining) {
    timers.push(setTimeout(() => abort(new Error('host deadline')), Math.max(0, hostRemaining())));
  }
  try {
    const running = Promise.resolve().then(() => work(controller.signal, remainingTimeMs));
    if (hardSeconds === undefined) return await running;
    const limit = new Promise<never>((_, reject) => {
      timers.push(
        setTimeout(() => {
          const error = new TimeLimitExceededError(task, hardSeconds);
          abort(error);
          reject(error);
        }, hardSeconds * 1000),
      );
    });
    return await Promise.race([running, limit]);
  } finally {
    for (const timer of timers) clearTimeout(timer);
    // A long-lived signal (a worker's shutdown signal) must not collect one listener per run.
    outside?.removeEventListener('abort', forward);
  }
}

/** Throws `toError(reason)` if `signal` is aborted: a helper for long-running handlers. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw toError(signal.reason);
}
