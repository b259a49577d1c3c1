/**
 * The Redis poller as a scheduled Lambda ("drain"): Redis has no Lambda event source, so this
 * function pulls batches itself and invokes each task's function, like the long-lived
 * `serverless-celery worker --invoke lambda`, through the same code path. Scheduled drains hand
 * over to each other (drain-relay.ts): each stops taking once the next tick's poller has
 * announced itself, or shortly before its own timeout, and settles what it holds before returning.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { onceStoreAt } from '../brokers/once-store-at.js';
import { DEFAULT_BROKER_URL } from '../config/broker-config.js';
import type { OnceStore } from '../core/once-store.js';
import { runWorker } from '../worker/local-worker.js';
import {
  createDrainRelay,
  POLLER_INTERVAL_MS,
  type RelayStop,
  scheduledTick,
} from './drain-relay.js';
import { deployedFunctionName } from './function-names.js';
import { type LambdaExecutorOptions, lambdaExecutor } from './lambda-executor.js';
import { metricsInLambda, type TaskMetricsSink } from './metrics.js';
import { instrumentExecutor } from './metrics-executor.js';
import type { LambdaRuntime } from './runtime.js';

/** Options of {@link createPollerHandler}. */
export interface PollerOptions {
  /** Queues to drain. @defaultValue every declared queue */
  readonly queues?: readonly string[];
  /**
   * Stop taking messages when less than this is left before the poller's timeout, successor or
   * not. Must exceed the task functions' timeout, so every invoke returns before the poller is
   * stopped. @defaultValue 60000
   */
  readonly stopTakingAtMs?: number;
  /** Invokes of task functions in flight at once. @defaultValue 100 */
  readonly maxInFlight?: number;
  /** Most messages per invoke (all of one task). @defaultValue 10 */
  readonly invokeBatchSize?: number;
  /** Lambda client, for tests. */
  readonly client?: LambdaExecutorOptions['client'];
  /**
   * Where pollers announce the tick they serve (drain-relay.ts), or `false` for no relay: the
   * drain then runs until `stopTakingAtMs` whatever other pollers do (tests, and callers that
   * invoke the handler by hand several times a minute).
   * @defaultValue the broker's store: `onceStoreAt(BROKER_URL)`, else the local Redis
   */
  readonly relay?: OnceStore | false;
  /** The schedule's interval, serverless.yml's `rate`. @defaultValue 60000 */
  readonly intervalMs?: number;
  /**
   * Where the invoke metrics go, as CloudWatch EMF (`null`: nowhere).
   * @defaultValue Powertools Metrics in Lambda, none elsewhere
   */
  readonly metrics?: TaskMetricsSink | null;
}

/** What one drain did. */
export interface PollerResult {
  readonly settled: number;
  readonly released: number;
  /** Why it stopped taking: `duplicate tick` when another poller serves its tick. */
  readonly stopped: RelayStop;
}

/** Builds the scheduled drain handler. */
export function createPollerHandler(runtime: LambdaRuntime, options: PollerOptions = {}) {
  const stopAt = options.stopTakingAtMs ?? 60_000;
  const intervalMs = options.intervalMs ?? POLLER_INTERVAL_MS;
  const metrics = options.metrics !== undefined ? options.metrics : metricsInLambda();
  // Built once per container, like the broker; it connects on first use and stays connected.
  const store =
    options.relay ??
    onceStoreAt(process.env.BROKER_URL ?? DEFAULT_BROKER_URL, {
      subject: 'poller relay',
      noun: 'a relay store',
      advice: 'pass one as `relay` to createPollerHandler',
    });
  return middy(
    async (
      event: unknown,
      context: Context,
      { signal }: { signal: AbortSignal },
    ): Promise<PollerResult> => {
      const { registry } = runtime;
      metrics?.captureColdStartMetric?.(context.functionName);
      const hardStop = () => context.getRemainingTimeInMillis() <= stopAt;
      const relay = store
        ? createDrainRelay({
            store,
            // The function's name holds its stage: two stages sharing one Redis stay apart.
            name: context.functionName,
            tick: scheduledTick(event, intervalMs),
            intervalMs,
            hardStop,
          })
        : undefined;
      if (relay && !(await relay.start())) {
        return { settled: 0, released: 0, stopped: 'duplicate tick' };
      }
      let settled = 0;
      let released = 0;
      const invoker = lambdaExecutor({
        functionName: (task) => deployedFunctionName(registry, task),
        batchSize: options.invokeBatchSize ?? 10,
        ...(options.client ? { client: options.client } : {}),
      });
      const instrumented = metrics ? instrumentExecutor(invoker, metrics) : null;
      const executor = instrumented ?? invoker;
      try {
        await runWorker(runtime.broker(), registry, {
          resultBackend: runtime.resultBackend?.() ?? null,
          // The environment is the worker: online at its cold start, beating while it drains.
          events: runtime.events?.() ?? null,
          presence: 'invocation',
          // middy aborts this just before the Lambda timeout: stop taking, settle what is held.
          signal,
          queues: options.queues ?? registry.queues.map((queue) => queue.name),
          concurrency: options.maxInFlight ?? 100,
          // One wave of invokes read ahead: when a wave of equal tasks ends together, the next
          // starts at once instead of after a settle and a receive of a thousand messages.
          prefetchMultiplier: 2,
          executor,
          keepTaking: relay ? relay.keepTaking : () => !hardStop(),
          onOutcome: ({ outcome }) => {
            if (outcome.kind === 'released') released++;
            else settled++;
          },
        });
      } finally {
        // A timer left running would fire in the next invocation of this warm container.
        relay?.stop();
        instrumented?.flush();
      }
      return { settled, released, stopped: relay?.stoppedBecause() ?? 'hard stop' };
    },
  );
}
