/**
 * The demo app: its registry and runtime, shared by every function in `functions/`.
 */
import { createRegistry } from '../core/registry.js';
import { createRuntime } from '../lambda/runtime.js';
import * as tasks from './tasks.js';

/** Every task and queue of the demo. */
export const registry = createRegistry({
  tasks: [tasks],
  queues: [{ name: tasks.EVENTS_QUEUE }],
});

/** Registry and broker (`BROKER_URL`, else the local Redis) for the demo's functions. */
export const runtime = createRuntime({ registry });
