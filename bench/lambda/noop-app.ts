/**
 * An app of one no-op task (with a cron, so the cron function has something to publish): what
 * the framework alone costs each kind of function (bench/lambda-cost.ts). The demo's functions
 * also carry the demo's Redis store; a real app's carry its own dependencies.
 */
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';

/** The task: does nothing, every minute. */
export const noop = defineTask(
  { name: 'bench.noop', queue: 'bench', cron: '* * * * *' },
  () => undefined,
);

/** The app's registry. */
export const registry = createRegistry({ tasks: [noop], queues: [{ name: 'bench' }] });
