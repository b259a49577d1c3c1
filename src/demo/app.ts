/**
 * The demo app: its registry and runtime, shared by every function in `functions/` that
 * publishes or dispatches (the task functions import `registry.ts` alone).
 */
import { createRuntime } from '../lambda/runtime.js';
import { registry } from './registry.js';

export { registry };

/** Registry and broker (`BROKER_URL`, else the local Redis) for the demo's functions. */
export const runtime = createRuntime({ registry });
