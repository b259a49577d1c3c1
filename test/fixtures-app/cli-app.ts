/**
 * The app the CLI tests run `serverless-celery --app test/fixtures-app/cli-app.ts …` with: a task
 * that adds, one that always fails with an excluded error (dead-lettered on its first run), and
 * a cron task that runs every minute. Queue and task names come from the environment so that
 * each test file has its own:
 *
 *   SC_CLI_QUEUE   queue of every task (default `sc-cli-test`)
 *   SC_CLI_TASKS   prefix of the task names (default `cli_test`)
 */
import { z } from 'zod';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { defineTask, type Task } from '../../src/core/task.js';

/** Options of {@link createCliApp}. */
export interface CliAppOptions {
  readonly queue: string;
  /** Prefix of the task names: `<prefix>.add`, `<prefix>.fail`, `<prefix>.tick`. */
  readonly prefix: string;
}

/** The app: its registry and tasks. */
export interface CliApp {
  readonly registry: Registry;
  readonly add: Task;
  readonly fail: Task;
  readonly tick: Task;
}

/** Builds the app on one queue. */
export function createCliApp(options: CliAppOptions): CliApp {
  const add = defineTask(
    {
      name: `${options.prefix}.add`,
      queue: options.queue,
      kwargs: z.object({ x: z.number(), y: z.number() }),
      maxRetries: 2,
    },
    ({ x, y }) => x + y,
  );
  const fail = defineTask(
    {
      name: `${options.prefix}.fail`,
      queue: options.queue,
      retry: { exclude: [TypeError] },
    },
    () => {
      throw new TypeError('the payload has no body');
    },
  );
  const tick = defineTask(
    { name: `${options.prefix}.tick`, queue: options.queue, cron: '* * * * *' },
    () => 'tick',
  );
  const registry = createRegistry({
    tasks: [add, fail, tick],
    queues: [{ name: options.queue }],
  });
  return { registry, add, fail, tick };
}

/** The app as the environment names it; what `--app` loads. */
export const registry = createCliApp({
  queue: process.env.SC_CLI_QUEUE || 'sc-cli-test',
  prefix: process.env.SC_CLI_TASKS || 'cli_test',
}).registry;
