/**
 * Counting executions against what was sent: the figures the at-least-once and broker-restart
 * tests assert on and print (tasks sent, executed, unique, duplicates, lost).
 */
import type { Redis } from 'ioredis';
import { type Execution, parseExecution } from '../../fixtures-app/reliability-executions.js';

/** What happened to a set of sent task ids. */
export interface ExecutionFigures {
  /** Tasks sent (distinct ids). */
  readonly sent: number;
  /** Executions recorded for the sent ids, repeats included. */
  readonly executed: number;
  /** Sent ids executed at least once. */
  readonly unique: number;
  /** Executions beyond the first of each id (`executed - unique`). */
  readonly duplicates: number;
  /** Sent ids never executed. */
  readonly lost: number;
  /** Ids run more than once. */
  readonly duplicatedIds: readonly string[];
  /** Repeat executions (second and later of an id) not flagged redelivered: should be none. */
  readonly unflaggedRepeats: readonly Execution[];
  /** Executions of ids that were not sent (another test's messages): should be none. */
  readonly strangers: readonly Execution[];
  /** Most executions of one id. */
  readonly maxRuns: number;
}

/** Every execution in the log at `key`, in the order they were recorded. */
export async function readExecutions(redis: Redis, key: string): Promise<Execution[]> {
  return (await redis.lrange(key, 0, -1)).map(parseExecution);
}

/** How many distinct ids the log at `key` holds (cheap enough to poll with 10 000 entries). */
export async function countUnique(redis: Redis, key: string): Promise<number> {
  return new Set((await readExecutions(redis, key)).map((execution) => execution.id)).size;
}

/**
 * The figures of `executions` (in recorded order) against `sentIds`. A repeat is an execution of
 * an id after its first one; the first may itself be a redelivery (a message a killed consumer
 * received but never ran).
 */
export function figuresOf(
  sentIds: Iterable<string>,
  executions: readonly Execution[],
): ExecutionFigures {
  const sent = new Set(sentIds);
  const runs = new Map<string, number>();
  const unflaggedRepeats: Execution[] = [];
  const strangers: Execution[] = [];
  for (const execution of executions) {
    if (!sent.has(execution.id)) {
      strangers.push(execution);
      continue;
    }
    const before = runs.get(execution.id) ?? 0;
    if (before > 0 && !execution.redelivered) unflaggedRepeats.push(execution);
    runs.set(execution.id, before + 1);
  }
  const executed = executions.length - strangers.length;
  return {
    sent: sent.size,
    executed,
    unique: runs.size,
    duplicates: executed - runs.size,
    lost: sent.size - runs.size,
    duplicatedIds: [...runs].filter(([, count]) => count > 1).map(([id]) => id),
    unflaggedRepeats,
    strangers,
    maxRuns: Math.max(0, ...runs.values()),
  };
}

/** The seed of this run: `SC_RELIABILITY_SEED` when set (to replay one), else a random one. */
export function runSeed(): number {
  const fromEnv = Number(process.env.SC_RELIABILITY_SEED);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : Math.floor(Math.random() * 2 ** 31);
}
