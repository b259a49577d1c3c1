/**
 * The demo app (`custom.celery.app` in serverless.yml, the CLI's default `--app`): its registry
 * and runtime. The plugin's task functions import `registry` alone; the poller, dispatcher,
 * producers, cron triggers and the events API use `runtime`.
 */
import { createRuntime } from '../lambda/runtime.js';
import { registry } from './registry.js';

export { registry };

/**
 * Registry and broker (`BROKER_URL`, else the local Redis) for the demo's functions. Marked pure
 * (createRuntime connects nothing) so that esbuild drops it from the task functions, which do not
 * use it: their bundles then carry no broker client.
 */
export const runtime = /* @__PURE__ */ createRuntime({ registry });
