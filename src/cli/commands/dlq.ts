/**
 * `serverless-celery dlq list|show|replay|purge`: the dead-letter stores of the app's queues.
 * `replay` re-publishes entries (same id, retries reset, no eta or expiry); `purge` deletes them,
 * after a confirmation on a terminal, or with `--yes`. Long replays and purges show progress on
 * standard error. `list` and `show` name the broker they read, in tables and in `--json`.
 */
import type { Command } from 'commander';
import type { Broker, DeadLetterEntry, DeadLetterFilter } from '../../brokers/broker.js';
import { queuesOf } from '../app-loader.js';
import { type BrokerIdentity, chooseBroker, withBroker } from '../broker-choice.js';
import type { CliContext } from '../context.js';
import { CliError, EXIT_CODES, UsageError } from '../exit-codes.js';
import { type CommonOptions, nameList, positiveInteger, withCommonOptions } from '../options.js';
import {
  deadLettersJson,
  describeBroker,
  formatDeadLetter,
  formatDeadLetterTable,
  progress,
} from '../output.js';

/** Entries replayed or purged per broker call; progress is reported between calls. */
export const CHUNK = 200;
/** Entries `dlq list` shows unless `--limit` says otherwise. */
export const DEFAULT_LIST_LIMIT = 50;

/** Options of the `dlq` subcommands. */
export interface DlqOptions extends CommonOptions {
  /** @defaultValue every queue the app declares */
  readonly queue?: string[];
  readonly task?: string;
  readonly limit?: number;
  readonly json?: boolean;
  readonly yes?: boolean;
}

/** Adds `dlq` and its subcommands to the program. */
export function registerDlq(
  program: Command,
  context: CliContext,
  done: (code: number) => void,
): void {
  const dlq = program
    .command('dlq')
    .description('list, show, replay or purge dead letters')
    .addHelpText('after', '\nRun `serverless-celery dlq <command> --help` for each command.');
  const common = (command: Command) =>
    withCommonOptions(command)
      .option(
        '--queue <names>',
        'comma-separated queues (default: every queue of the app)',
        nameList,
      )
      .option('--task <name>', 'only dead letters of this task');

  common(dlq.command('list').description('reason, task, id, retries, error and time of each'))
    .option('--limit <n>', 'most entries shown', positiveInteger, DEFAULT_LIST_LIMIT)
    .option('--json', 'print JSON for scripts')
    .action(async (options: DlqOptions) => done(await runDlqList(context, options)));

  common(dlq.command('show').description('one dead letter in full, raw message included'))
    .argument('<id>', 'task id')
    .option('--json', 'print JSON for scripts')
    .action(async (id: string, options: DlqOptions) =>
      done(await runDlqShow(context, id, options)),
    );

  common(
    dlq
      .command('replay')
      .description('re-publish dead letters to their queue: same id, retries reset, oldest first'),
  )
    .option('--limit <n>', 'most entries replayed (default: all)', positiveInteger)
    .action(async (options: DlqOptions) => done(await runDlqReplay(context, options)));

  common(dlq.command('purge').description('delete dead letters (asks first unless --yes)'))
    .option('--limit <n>', 'most entries deleted, oldest first (default: all)', positiveInteger)
    .option('-y, --yes', 'do not ask (required when standard input is not a terminal)')
    .action(async (options: DlqOptions) => done(await runDlqPurge(context, options)));
}

/** `dlq list`: newest first across the queues, at most `--limit`. */
export async function runDlqList(context: CliContext, options: DlqOptions): Promise<number> {
  const limit = options.limit ?? DEFAULT_LIST_LIMIT;
  return withQueues(context, options, async (broker, queues, identity) => {
    let total = 0;
    const entries: DeadLetterEntry[] = [];
    for (const queue of queues) {
      const count = (await broker.stats(queue)).deadLettered;
      total += count;
      // A task filter may match anywhere in the store; otherwise `limit` entries are enough.
      const read = await broker.deadLetters(queue, options.task ? count : Math.min(limit, count));
      entries.push(...read.filter((entry) => matches(entry, options)));
    }
    const shown = entries.sort((a, b) => b.at.localeCompare(a.at)).slice(0, limit);
    if (options.json) {
      context.stdout(deadLettersJson(shown, identity));
    } else if (shown.length === 0) {
      context.stdout(
        `no dead letters${options.task ? ` of task ${options.task}` : ''} in ${queues.join(', ')} on ${describeBroker(identity)}\n`,
      );
    } else {
      context.stdout(formatDeadLetterTable(shown, identity));
      const order = broker.kind === 'redis' ? 'newest' : 'oldest';
      context.stderr(
        `${shown.length} shown of ${total} dead letter(s)` +
          (shown.length < total && !options.task ? ` (the ${order} of each queue)` : '') +
          '; `serverless-celery dlq show <id>` prints one in full\n',
      );
    }
    return EXIT_CODES.ok;
  });
}

/** `dlq show <id>`: every entry with that task id, in full. */
export async function runDlqShow(
  context: CliContext,
  id: string,
  options: DlqOptions,
): Promise<number> {
  return withQueues(context, options, async (broker, queues, identity) => {
    const found: DeadLetterEntry[] = [];
    for (const queue of queues) {
      const count = (await broker.stats(queue)).deadLettered;
      const entries = await broker.deadLetters(queue, count);
      found.push(...entries.filter((entry) => entry.id === id && matches(entry, options)));
    }
    if (found.length === 0) {
      throw new CliError(
        `no dead letter with id ${id} in ${queues.join(', ')} on ${describeBroker(identity)} (\`serverless-celery dlq list\` shows the ids)`,
        EXIT_CODES.failure,
      );
    }
    context.stdout(
      options.json
        ? deadLettersJson(found, identity)
        : found.map((entry) => formatDeadLetter(entry, identity)).join('\n'),
    );
    return EXIT_CODES.ok;
  });
}

/** `dlq replay`: prints how many were re-published, per queue. */
export async function runDlqReplay(context: CliContext, options: DlqOptions): Promise<number> {
  return withQueues(context, options, async (broker, queues) => {
    let left = options.limit ?? Number.POSITIVE_INFINITY;
    for (const queue of queues) {
      // Capped at what is there now: a worker that dead-letters the replayed messages again
      // while this runs must not make the replay go round for ever.
      const cap = Math.min(left, (await broker.stats(queue)).deadLettered);
      const replayed = await inChunks(context, `replaying ${queue}`, cap, (limit) =>
        broker.replayDeadLetters(queue, filterOf(options, limit)),
      );
      left -= replayed;
      context.stdout(`replayed ${replayed} dead letter(s) to ${queue}\n`);
    }
    return EXIT_CODES.ok;
  });
}

/** `dlq purge`: asks first on a terminal; refuses off one without `--yes`. */
export async function runDlqPurge(context: CliContext, options: DlqOptions): Promise<number> {
  if (!options.yes && !context.stdinIsTTY) {
    throw new UsageError('refusing to purge without --yes: standard input is not a terminal');
  }
  return withQueues(context, options, async (broker, queues) => {
    const counts = new Map<string, number>();
    for (const queue of queues) counts.set(queue, (await broker.stats(queue)).deadLettered);
    const total = [...counts.values()].reduce((sum, count) => sum + count, 0);
    if (total === 0) {
      context.stdout(`nothing to purge in ${queues.join(', ')}\n`);
      return EXIT_CODES.ok;
    }
    if (!options.yes) {
      const answer = await context.prompt(`Delete ${describePurge(counts, options)}? [y/N] `);
      if (!/^\s*y(es)?\s*$/i.test(answer)) {
        context.stderr('aborted: nothing purged\n');
        return EXIT_CODES.failure;
      }
    }
    let left = options.limit ?? Number.POSITIVE_INFINITY;
    for (const [queue, count] of counts) {
      if (count === 0 || left <= 0) continue;
      const purged =
        options.task === undefined && options.limit === undefined
          ? await broker.purgeDeadLetters(queue)
          : await inChunks(context, `purging ${queue}`, Math.min(left, count), (limit) =>
              broker.purgeDeadLetters(queue, filterOf(options, limit)),
            );
      left -= purged;
      context.stdout(`purged ${purged} dead letter(s) of ${queue}\n`);
    }
    return EXIT_CODES.ok;
  });
}

async function withQueues(
  context: CliContext,
  options: DlqOptions,
  work: (broker: Broker, queues: string[], identity: BrokerIdentity) => Promise<number>,
): Promise<number> {
  const app = await context.loadApp(options.app);
  const queues = queuesOf(context, app, options.queue);
  const choice = chooseBroker(context, app, options.broker);
  return withBroker(choice, (broker) => work(broker, queues, choice.identity));
}

/**
 * Runs `operation` in chunks of {@link CHUNK} until `cap` entries are done or it does fewer than
 * asked (nothing left that matches), reporting progress for large runs.
 */
async function inChunks(
  context: CliContext,
  label: string,
  cap: number,
  operation: (limit: number) => Promise<number>,
): Promise<number> {
  const shown = progress(context.stderr, label, cap, {
    tty: context.stderrIsTTY,
    threshold: CHUNK,
  });
  let done = 0;
  try {
    while (done < cap) {
      const wanted = Math.min(CHUNK, cap - done);
      const count = await operation(wanted);
      done += count;
      shown.update(done);
      if (count < wanted) break;
    }
  } finally {
    shown.finish();
  }
  return done;
}

function filterOf(options: DlqOptions, limit: number): DeadLetterFilter {
  return { limit, ...(options.task === undefined ? {} : { task: options.task }) };
}

function matches(entry: DeadLetterEntry, options: DlqOptions): boolean {
  return options.task === undefined || entry.task === options.task;
}

function describePurge(counts: ReadonlyMap<string, number>, options: DlqOptions): string {
  const stores = [...counts]
    .filter(([, count]) => count > 0)
    .map(([queue, count]) => `${count} in ${queue}`)
    .join(', ');
  const which = options.task
    ? `the dead letters of task ${options.task} among ${stores}`
    : `the dead letters (${stores})`;
  return options.limit === undefined ? which : `at most ${options.limit} of ${which}`;
}
