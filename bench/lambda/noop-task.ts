/**
 * A per-task function for a task that does nothing, wired like `functions/task-*.ts` but with a
 * registry of its own: what the framework alone costs a task function (the demo's functions
 * also carry the demo's store, and its registry module the broker runtime).
 */
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { createTaskHandler } from '../../src/lambda/task-handler.js';

const noop = defineTask({ name: 'bench.noop', queue: 'bench' }, () => undefined);

export const handler = createTaskHandler(
  createRegistry({ tasks: [noop], queues: [{ name: 'bench' }] }),
  'bench.noop',
);
