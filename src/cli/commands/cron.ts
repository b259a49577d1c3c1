/**
 * `serverless-celery cron`: publishes the app's cron tasks on their schedules from one long-lived
 * process (`sentry run cron`, Celery beat), as the `cron-<name>` functions do on AWS. Each tick
 * is claimed once per task with `SET NX EX` (the same key as the Lambda function's), so two cron
 * processes, or a process and the deployed functions, publish every tick once between them.
 * Messages expire after one interval, as Celery beat's do.
 */
import type { Command } from 'commander';
import type { Broker } from '../../brokers/broker.js';
import { brokerKindOf, redactUrl } from '../../config/broker-config.js';
import { toError } from '../../core/errors.js';
import { cronTickKey, nextRuns, type Schedule, scheduleInterval } from '../../core/schedule.js';
import type { Task } from '../../core/task.js';
import type { TickLock } from '../../lambda/cron-handler.js';
import { chooseBroker, startHint, withBroker } from '../broker-choice.js';
import type { CliContext } from '../context.js';
import { AppConfigError, EXIT_CODES, UnavailableError, UsageError } from '../exit-codes.js';
import { type CommonOptions, isoDate, withCommonOptions } from '../options.js';
import { formatDuration } from '../output.js';

/** Longest single wait: a far-off tick is approached in steps (timers overflow past ~24 days). */
const MAX_WAIT_MS = 60_000;

/** Options of `cron`. */
export interface CronCommandOptions extends CommonOptions {
  /** Redis or RabbitMQ of the tick locks. @defaultValue `$CRON_LOCK_URL`, else the broker */
  readonly lockUrl?: string;
  /** Publish the tasks due at this minute once, then exit. */
  readonly tick?: Date;
}

/** What one task's tick came to. */
export type TickResult =
  | { readonly kind: 'published'; readonly id: string; readonly expires: number }
  | { readonly kind: 'skipped' }
  | { readonly kind: 'failed'; readonly stage: 'lock' | 'publish'; readonly error: Error };

/** Adds `cron` to the program. */
export function registerCron(
  program: Command,
  context: CliContext,
  done: (code: number) => void,
): void {
  withCommonOptions(
    program
      .command('cron')
      .description('publish the cron tasks on their schedules, once per tick across processes'),
  )
    .option(
      '--lock-url <url>',
      'Redis or RabbitMQ holding the per-tick locks (default: $CRON_LOCK_URL, else the broker)',
    )
    .option('--tick <iso>', 'publish the tasks due at this minute once, then exit', isoDate)
    .action(async (options: CronCommandOptions) => {
      done(await runCronCommand(context, options));
    });
}

/** Runs `cron` until a shutdown signal (or, with `--tick`, for that one tick). */
export async function runCronCommand(
  context: CliContext,
  options: CronCommandOptions,
): Promise<number> {
  const app = await context.loadApp(options.app);
  const tasks = app.registry.tasks.filter((task) => task.schedule !== null);
  if (tasks.length === 0) {
    throw new AppConfigError(`the app ${app.module} has no task with a cron schedule`);
  }
  const choice = chooseBroker(context, app, options.broker);
  const lockUrl = options.lockUrl ?? (context.env.CRON_LOCK_URL || choice.url);
  if (!brokerKindOf(lockUrl)) {
    throw new UsageError(
      `the cron lock needs Redis or RabbitMQ: ${redactUrl(lockUrl)} is not a redis:// or amqp:// URL`,
    );
  }
  const lock = context.tickLock(lockUrl);
  const ticker = { context, lock, lockUrl };
  try {
    return await withBroker(choice, async (broker) => {
      await broker.stats((tasks[0] as Task).options.queue);
      if (options.tick) return fireOnce({ ...ticker, broker }, tasks, options.tick);
      context.stderr(
        `cron: ${tasks.map(describeTask).join(', ')}; broker ${choice.label}, lock ${redactUrl(lockUrl)} (Ctrl-C to stop)\n`,
      );
      await loop({ ...ticker, broker }, tasks);
      context.stderr('cron: stopped\n');
      return EXIT_CODES.ok;
    });
  } finally {
    await lock.close?.().catch(() => {
      // The lock's Redis went away: its keys expire by themselves.
    });
  }
}

interface Ticker {
  readonly context: CliContext;
  readonly broker: Broker;
  readonly lock: TickLock;
  readonly lockUrl: string;
}

async function loop(ticker: Ticker, tasks: readonly Task[]): Promise<void> {
  const { context } = ticker;
  const stop = new AbortController();
  const dispose = context.onShutdown((signal) => {
    context.stderr(`cron: ${signal}: stopping\n`);
    stop.abort();
  });
  const next = new Map(tasks.map((task) => [task, nextTick(task, context.now())]));
  try {
    while (!stop.signal.aborted) {
      const soonest = Math.min(...[...next.values()].map((at) => at.getTime()));
      const wait = soonest - context.now();
      if (wait > 0) {
        await context.sleep(Math.min(wait, MAX_WAIT_MS), stop.signal);
        continue;
      }
      for (const [task, at] of next) {
        if (at.getTime() !== soonest) continue;
        report(ticker, task, at, await fireTick(ticker, task, at));
        // From now, not from the tick: after a stall (a laptop asleep) missed ticks are skipped,
        // not published in a burst, as Celery beat does.
        next.set(task, nextTick(task, Math.max(soonest, context.now())));
      }
    }
  } finally {
    dispose();
  }
}

async function fireOnce(ticker: Ticker, tasks: readonly Task[], at: Date): Promise<number> {
  const tick = new Date(Math.floor(at.getTime() / 60_000) * 60_000);
  let failure: TickResult | undefined;
  for (const task of tasks) {
    if (!isDue(task.schedule as Schedule, tick)) {
      ticker.context.stdout(`${tick.toISOString()}  ${task.name}  not due at this tick\n`);
      continue;
    }
    const result = await fireTick(ticker, task, tick);
    report(ticker, task, tick, result);
    if (result.kind === 'failed') failure ??= result;
  }
  if (failure?.kind !== 'failed') return EXIT_CODES.ok;
  throw failure.stage === 'lock' ? lockProblem(ticker.lockUrl, failure.error) : failure.error;
}

/**
 * Publishes one tick of one task unless another process claimed it: claim the tick's key for
 * one interval, publish with `expires` = the interval, give the claim back if publishing failed
 * (so a retry, or the other process, may publish it after all).
 */
export async function fireTick(ticker: Ticker, task: Task, tick: Date): Promise<TickResult> {
  const schedule = task.schedule as Schedule;
  const interval = scheduleInterval(schedule, tick);
  const key = cronTickKey(task.name, tick.toISOString());
  try {
    if (!(await ticker.lock.claim(key, interval))) return { kind: 'skipped' };
  } catch (error) {
    return { kind: 'failed', stage: 'lock', error: lockError(error, ticker.lockUrl) };
  }
  const expires = task.options.expires ?? interval;
  const message = task.createMessage({ expires });
  try {
    await ticker.broker.publish([message]);
  } catch (error) {
    await ticker.lock.release?.(key).catch(() => {
      // The lock is unreachable too: its key expires after one interval.
    });
    return { kind: 'failed', stage: 'publish', error: toError(error) };
  }
  return { kind: 'published', id: message.id, expires };
}

function report(ticker: Ticker, task: Task, tick: Date, result: TickResult): void {
  const head = `${tick.toISOString()}  ${task.name}`;
  switch (result.kind) {
    case 'published':
      ticker.context.stdout(
        `${head}  published ${result.id} (expires in ${formatDuration(result.expires * 1000)})\n`,
      );
      return;
    case 'skipped':
      ticker.context.stdout(`${head}  skipped: already published for this tick\n`);
      return;
    case 'failed': {
      const where = result.stage === 'lock' ? `lock ${describeLock(ticker.lockUrl)}` : 'publishing';
      ticker.context.stderr(`${head}  not published: ${where}: ${result.error.message}\n`);
    }
  }
}

function lockProblem(lockUrl: string, error: Error): UnavailableError {
  const hint = startHint(lockUrl, brokerKindOf(lockUrl) ?? 'redis', error.message);
  return new UnavailableError(
    `cron lock ${describeLock(lockUrl)} unavailable: ${error.message}${hint ? `. Start one: ${hint}` : ''}`,
    { cause: error },
  );
}

/** ioredis's "Reached the max retries per request limit…" says only that no connection came up. */
function lockError(thrown: unknown, lockUrl: string): Error {
  const error = toError(thrown);
  const code = (error as { code?: unknown }).code;
  if (error.name === 'MaxRetriesPerRequestError' || code === 'ECONNREFUSED') {
    const server = brokerKindOf(lockUrl) === 'rabbitmq' ? 'rabbitmq-server' : 'redis-server';
    return new Error(`no connection (connection refused or lost; is ${server} running?)`, {
      cause: error,
    });
  }
  return error;
}

/** `Redis <url>` or `RabbitMQ <url>`, password hidden. */
function describeLock(url: string): string {
  return `${brokerKindOf(url) === 'rabbitmq' ? 'RabbitMQ' : 'Redis'} ${redactUrl(url)}`;
}

function nextTick(task: Task, from: number): Date {
  return nextRuns(task.schedule as Schedule, new Date(from))[0] as Date;
}

function isDue(schedule: Schedule, tick: Date): boolean {
  return nextRuns(schedule, new Date(tick.getTime() - 1))[0]?.getTime() === tick.getTime();
}

function describeTask(task: Task): string {
  const schedule = task.schedule as Schedule;
  const text =
    schedule.kind === 'cron' ? schedule.expression : `rate(${schedule.value} ${schedule.unit})`;
  return `${task.name} (${text})`;
}
