/**
 * The figures of a broker-restart run: what the producer was told about each publish against
 * what the worker ran.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Execution } from '../../fixtures-app/reliability-executions.js';
import { readExecutions } from './execution-figures.js';
import type { PublishAttempt } from './steady-producer.js';
import type { WorkerProcess } from './worker-process.js';

/** Longest wait for the worker to run every published task after the producer stopped. */
const DRAIN_WITHIN_MS = 60_000;

/** What a broker-restart run came to. */
export interface RestartFigures {
  /** The numbers to print. */
  readonly counts: {
    readonly publishCalls: number;
    readonly publishCallsSucceeded: number;
    readonly publishCallsFailed: number;
    readonly tasksPublished: number;
    readonly tasksFailedToPublish: number;
    readonly executed: number;
    readonly unique: number;
    readonly duplicates: number;
    /** Published (the call resolved) and never run: must be 0. */
    readonly lost: number;
    /** The call failed, yet the task ran: the broker had it when the reply was lost. */
    readonly failedButRan: number;
    /** Repeat executions not flagged redelivered (a message the broker got twice). */
    readonly unflaggedRepeats: number;
    /** Failed calls by error name and reason (the endpoint left out). */
    readonly failures: Record<string, number>;
  };
  readonly failed: readonly PublishAttempt[];
  readonly lostIds: readonly string[];
  /** Executions of ids no call carried. */
  readonly strangers: readonly Execution[];
  /** Failed calls of which some tasks ran and some did not. */
  readonly halfPublished: readonly PublishAttempt[];
}

/** Compares the producer's attempts with the executions. */
export function restartFigures(
  attempts: readonly PublishAttempt[],
  executions: readonly Execution[],
): RestartFigures {
  const ran = new Set(executions.map((execution) => execution.id));
  const succeeded = attempts.filter((attempt) => attempt.error === null);
  const failed = attempts.filter((attempt) => attempt.error !== null);
  const publishedIds = succeeded.flatMap((attempt) => attempt.ids);
  const failedIds = failed.flatMap((attempt) => attempt.ids);
  const carried = new Set([...publishedIds, ...failedIds]);
  const lostIds = publishedIds.filter((id) => !ran.has(id));
  const halfPublished = failed.filter((attempt) => {
    const runs = attempt.ids.filter((id) => ran.has(id)).length;
    return runs > 0 && runs < attempt.ids.length;
  });
  return {
    counts: {
      publishCalls: attempts.length,
      publishCallsSucceeded: succeeded.length,
      publishCallsFailed: failed.length,
      tasksPublished: publishedIds.length,
      tasksFailedToPublish: failedIds.length,
      executed: executions.length,
      unique: ran.size,
      duplicates: executions.length - ran.size,
      lost: lostIds.length,
      failedButRan: failedIds.filter((id) => ran.has(id)).length,
      unflaggedRepeats: unflaggedRepeats(executions),
      failures: countFailures(failed),
    },
    failed,
    lostIds,
    strangers: executions.filter((execution) => !carried.has(execution.id)),
    halfPublished,
  };
}

function countFailures(failed: readonly PublishAttempt[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { error } of failed) {
    const name = error instanceof Error ? error.name : typeof error;
    const message = error instanceof Error ? error.message : String(error);
    // `Redis at 127.0.0.1:41235/0: publish 3 message(s) failed: …` → the part after the endpoint.
    const reason = message.replace(/^(Redis|RabbitMQ) at [^:]+:\d+\S*( vhost "[^"]*")?: /, '');
    const key = `${name}: ${reason.replace(/\d+ message\(s\)/, 'n message(s)')}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

function unflaggedRepeats(executions: readonly Execution[]): number {
  const seen = new Set<string>();
  let count = 0;
  for (const execution of executions) {
    if (seen.has(execution.id) && !execution.redelivered) count++;
    seen.add(execution.id);
  }
  return count;
}

/**
 * Waits until every id of `ids` has run (or 60 s pass: the test then reports what is lost).
 *
 * @throws Error with the worker's output if it dies meanwhile
 */
export async function waitForExecutions(
  log: Redis,
  key: string,
  ids: readonly string[],
  worker: WorkerProcess,
): Promise<void> {
  const deadline = Date.now() + DRAIN_WITHIN_MS;
  let missing = new Set(ids);
  while (missing.size > 0 && Date.now() < deadline) {
    if (worker.exited) throw new Error(`worker died by itself:\n${worker.output}`);
    await sleep(250);
    const ran = new Set((await readExecutions(log, key)).map((execution) => execution.id));
    missing = new Set([...missing].filter((id) => !ran.has(id)));
  }
}
