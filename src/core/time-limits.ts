/**
 * Time limits of a task run: which hard and soft limits apply, and running a task under them.
 *
 * Per limit, the stricter of the message's `timelimit` and the task's own option applies.
 * Celery 5.2.6 reads both too (`celery/worker/request.py`, `Request.execute_using_pool`:
 * `timeout=time_limit or task.time_limit`), but lets a message's value win even when it is
 * looser. Here the task's limit is a promise about its function (a Lambda timeout is set from
 * it), so a producer may shorten a run, never stretch it past what the deployment allows. A
 * Python producer writes the caller's `apply_async(time_limit=…)`, else its own copy of the
 * task's `time_limit` (`celery/app/task.py`, `extract_exec_options`); ours writes the task's.
 *
 * The function's remaining time (Lambda) caps the hard limit on top: a run ends then as well.
 */
import { SoftTimeLimitExceeded, TimeLimitExceededError } from './errors.js';
import type { TimeLimit } from './message.js';

/** One limit a run is held to: its length and what set it. */
export interface LimitInForce {
  readonly seconds: number;
  readonly source: 'message' | 'task';
}

/** The limits a run is held to; `null` where there is none. */
export interface EffectiveTimeLimits {
  readonly hard: LimitInForce | null;
  readonly soft: LimitInForce | null;
}

/** What bounds a run from outside: its host's time left and an abort (shutdown). */
export interface RunBounds {
  /** Milliseconds before the host stops the run; it ends then. @defaultValue no limit */
  readonly remainingTimeMs?: () => number;
  /** Aborts the task's signal; the run still waits for the task (or its limits). */
  readonly signal?: AbortSignal;
}

// setTimeout fires at once for a longer delay; a limit of 24.8 days or more is left unenforced.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The hard and soft limits of a run: per limit, the stricter of the message's value and the
 * task's option. A message value equal to the task's own is reported as the task's (our producer
 * copies the task's options into every message).
 *
 * @param message - the message's `timelimit`, `[hard, soft]` seconds or nulls
 * @param task - the task's `timeLimit` and `softTimeLimit` options
 */
export function effectiveTimeLimits(
  message: TimeLimit,
  task: { readonly timeLimit?: number | undefined; readonly softTimeLimit?: number | undefined },
): EffectiveTimeLimits {
  return {
    hard: pickLimit(message[0], task.timeLimit),
    soft: pickLimit(message[1], task.softTimeLimit),
  };
}

function pickLimit(fromMessage: number | null, fromTask: number | undefined): LimitInForce | null {
  // A message's 0 means none, as Python's `or` reads it.
  const message = fromMessage !== null && fromMessage > 0 ? fromMessage : undefined;
  if (message !== undefined && (fromTask === undefined || message < fromTask)) {
    return { seconds: message, source: 'message' };
  }
  return fromTask === undefined ? null : { seconds: fromTask, source: 'task' };
}

/**
 * Runs `work` under `limits`. Its abort signal fires with {@link SoftTimeLimitExceeded} at the
 * soft limit and with the outside signal's reason when that aborts. At the hard limit, or when
 * the host's remaining time runs out if that comes first, the signal fires and the returned
 * promise rejects with {@link TimeLimitExceededError} at once, even if `work` never settles
 * (what it does later is ignored). `remainingTimeMs` is the time left before that moment.
 *
 * Nothing can kill `work`: a task that ignores its signal runs on, its result unheard. A handler
 * that blocks the event loop cannot even be interrupted: the limit fires once it yields.
 */
export function runWithLimits<T>(
  task: string,
  limits: EffectiveTimeLimits,
  bounds: RunBounds,
  work: (signal: AbortSignal, remainingTimeMs: () => number) => T | Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const abort = (reason: unknown) => controller.abort(reason);
  const outside = bounds.signal;
  const forward = () => abort(outside?.reason);
  if (outside?.aborted) forward();
  else outside?.addEventListener('abort', forward, { once: true });

  const startedAt = Date.now();
  const hostRemaining = bounds.remainingTimeMs;
  const hardMs = limits.hard ? limits.hard.seconds * 1000 : Number.POSITIVE_INFINITY;
  const hostMs = hostRemaining ? Math.max(0, hostRemaining()) : Number.POSITIVE_INFINITY;
  const remainingTimeMs = () => {
    const byHard = hardMs - (Date.now() - startedAt);
    const byHost = hostRemaining ? hostRemaining() : Number.POSITIVE_INFINITY;
    return Math.max(0, Math.min(byHard, byHost));
  };
  const exceeded = () =>
    limits.hard && hardMs <= hostMs
      ? new TimeLimitExceededError(task, limits.hard.seconds, limits.hard.source)
      : new TimeLimitExceededError(task, Math.round(hostMs) / 1000, 'host');

  const timers: NodeJS.Timeout[] = [];
  const finish = () => {
    for (const timer of timers) clearTimeout(timer);
    // A long-lived signal (a worker's shutdown signal) must not collect one listener per run.
    outside?.removeEventListener('abort', forward);
  };
  return new Promise<T>((resolve, reject) => {
    const soft = limits.soft;
    if (soft && soft.seconds * 1000 <= MAX_TIMER_MS) {
      const fire = () => abort(new SoftTimeLimitExceeded(task, soft.seconds, soft.source));
      timers.push(setTimeout(fire, soft.seconds * 1000));
    }
    const deadlineMs = Math.min(hardMs, hostMs);
    if (deadlineMs <= MAX_TIMER_MS) {
      const fire = () => {
        const error = exceeded();
        finish();
        abort(error);
        reject(error);
      };
      timers.push(setTimeout(fire, deadlineMs));
    }
    // Both callbacks stay attached after a hard limit settled the run, so the abandoned task's
    // late rejection is handled (a no-op) instead of crashing the process as unhandled.
    Promise.resolve()
      .then(() => work(controller.signal, remainingTimeMs))
      .then(
        (value) => {
          finish();
          resolve(value);
        },
        (error: unknown) => {
          finish();
          reject(error);
        },
      );
  });
}
