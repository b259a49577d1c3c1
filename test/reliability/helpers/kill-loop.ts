/**
 * The at-least-once run shared by both brokers: a long-lived worker drains a queue; at random
 * moments it is killed with SIGKILL and a fresh one is started, until every task has run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { countUnique } from './execution-figures.js';
import { startWorker, type WorkerProcess, type WorkerSettings } from './worker-process.js';

/** Longest wait for the executions a kill waits for. */
const KILL_WITHIN_MS = 60_000;
/** Longest wait, after the last kill, for every task to have run. */
const DRAIN_WITHIN_MS = 90_000;

/** One kill. */
export interface Kill {
  /** The worker killed. */
  readonly pid: number;
  /** Executions recorded (repeats included) when the kill was sent. */
  readonly afterExecutions: number;
  /**
   * Ids the broker still recorded as held by the killed worker just after its death (Redis's
   * `unacked` entries taken since it started), or `null` where the broker cannot tell (RabbitMQ
   * requeues them at once).
   */
  readonly held: readonly string[] | null;
}

/** Options of {@link runWithKills}. */
export interface KillLoopOptions {
  readonly worker: WorkerSettings;
  /** Client of the execution log (`worker.recordUrl`). */
  readonly recorder: Redis;
  /** Tasks in the queue. */
  readonly tasks: number;
  readonly kills: number;
  readonly random: () => number;
  /** Every worker started is added here, for the caller's `afterAll`. */
  readonly started: WorkerProcess[];
  /**
   * Reads what the killed worker held (see {@link Kill.held}): what was taken since `since` (unix
   * ms, just before it was started). Holds of earlier dead workers that no one restored yet are
   * older, and were counted at their own kill.
   */
  readonly heldAfterKill: (since: number) => Promise<string[] | null>;
  /** What the broker holds, for the message of a run that did not finish in time. */
  readonly describeBroker?: () => Promise<string>;
}

/** What {@link runWithKills} did. */
export interface KillLoopResult {
  readonly kills: readonly Kill[];
  /** The last worker, stopped with SIGTERM once every task had run. */
  readonly last: WorkerProcess;
}

/**
 * Kill moments, as counts of executions: one random point in each of `kills` equal slices of 5 %
 * to 90 % of `tasks`, away from the slice's edges so that every worker runs a while.
 */
export function killThresholds(tasks: number, kills: number, random: () => number): number[] {
  const low = tasks * 0.05;
  const width = (tasks * 0.85) / kills;
  return Array.from({ length: kills }, (_, slice) =>
    Math.round(low + (slice + 0.15 + 0.7 * random()) * width),
  );
}

/**
 * Starts a worker, kills it (SIGKILL) each time the execution log reaches the next threshold and
 * starts a fresh one, then waits until every task has run at least once and stops the last worker
 * with SIGTERM.
 *
 * @throws Error with the worker's output when a worker dies by itself or a deadline passes
 */
export async function runWithKills(options: KillLoopOptions): Promise<KillLoopResult> {
  const { recorder, worker: settings, started } = options;
  const kills: Kill[] = [];
  let since = Date.now();
  let worker = await startWorker(settings, started);
  for (const threshold of killThresholds(options.tasks, options.kills, options.random)) {
    const deadline = Date.now() + KILL_WITHIN_MS;
    let executions = await recorder.llen(settings.recordKey);
    while (executions < threshold) {
      if (worker.exited) throw new Error(`worker died by itself:\n${worker.output}`);
      if (Date.now() > deadline) {
        throw new Error(`${executions} executions after 60 s, waiting for ${threshold}`);
      }
      await sleep(2);
      executions = await recorder.llen(settings.recordKey);
    }
    await worker.stop('SIGKILL');
    const held = await options.heldAfterKill(since);
    kills.push({ pid: worker.pid, afterExecutions: executions, held });
    since = Date.now();
    worker = await startWorker(settings, started);
  }
  const deadline = Date.now() + DRAIN_WITHIN_MS;
  while (
    (await recorder.llen(settings.recordKey)) < options.tasks ||
    (await countUnique(recorder, settings.recordKey)) < options.tasks
  ) {
    if (worker.exited) throw new Error(`last worker died by itself:\n${worker.output}`);
    if (Date.now() > deadline) {
      const broker = (await options.describeBroker?.()) ?? '';
      throw new Error(`not every task ran within 90 s: ${broker}\n${worker.output}`);
    }
    await sleep(250);
  }
  await worker.stop('SIGTERM');
  return { kills, last: worker };
}
