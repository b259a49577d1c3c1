/**
 * The demo's registry: every task and queue it runs. The task functions import this module
 * alone, not `app.ts`: they run tasks and need no broker client, which a module that builds the
 * broker runtime would bring into their bundles.
 */
import { createRegistry } from '../core/registry.js';
import * as tasks from './tasks.js';

/** Every task and queue of the demo. */
export const registry = createRegistry({
  tasks: [tasks],
  queues: [{ name: tasks.EVENTS_QUEUE }],
});
