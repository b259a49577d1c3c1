/**
 * `serverless-celery inspect`: per queue, how many messages are ready, held by consumers,
 * delayed and dead-lettered (`broker.stats`); a table for people, `--json` for scripts, both
 * naming the broker they read.
 */
import type { Command } from 'commander';
import type { QueueStats } from '../../brokers/broker.js';
import { queuesOf } from '../app-loader.js';
import { chooseBroker, withBroker } from '../broker-choice.js';
import type { CliContext } from '../context.js';
import { EXIT_CODES } from '../exit-codes.js';
import { type CommonOptions, nameList, withCommonOptions } from '../options.js';
import { formatStatsTable, statsJson } from '../output.js';

/** Options of `inspect`. */
export interface InspectOptions extends CommonOptions {
  /** @defaultValue every queue the app declares */
  readonly queues?: string[];
  readonly json?: boolean;
}

/** Adds `inspect` to the program. */
export function registerInspect(
  program: Command,
  context: CliContext,
  done: (code: number) => void,
): void {
  withCommonOptions(
    program
      .command('inspect')
      .description('count ready, unacked, delayed and dead-lettered messages per queue'),
  )
    .option(
      '--queues <names>',
      'comma-separated queues (default: every queue of the app)',
      nameList,
    )
    .option('--json', 'print JSON for scripts instead of a table')
    .action(async (options: InspectOptions) => {
      done(await runInspect(context, options));
    });
}

/** Runs `inspect`. */
export async function runInspect(context: CliContext, options: InspectOptions): Promise<number> {
  const app = await context.loadApp(options.app);
  const queues = queuesOf(context, app, options.queues);
  const choice = chooseBroker(context, app, options.broker);
  await withBroker(choice, async (broker) => {
    const stats: QueueStats[] = [];
    for (const queue of queues) stats.push(await broker.stats(queue));
    context.stdout(
      options.json ? statsJson(stats, choice.identity) : formatStatsTable(stats, choice.identity),
    );
  });
  return EXIT_CODES.ok;
}
