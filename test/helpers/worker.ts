/**
 * Our local worker for integration tests: started in the background on given queues, stopped by
 * the function it returns (which aborts it and waits until what it held is settled); and beside
 * a real Python Celery worker, for the tests of messages crossing between the two.
 */
import { randomUUID } from 'node:crypto';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import type { Registry } from '../../src/core/registry.js';
import {
  runLocalWorker,
  type WorkerEvent,
  type WorkerOptions,
} from '../../src/worker/local-worker.js';
import { type CeleryWorker, startCeleryWorker, stopCeleryWorkers } from './celery.js';
import { until } from './until.js';

/** Starts {@link runLocalWorker}; the result stops it. `waitMs` defaults to 200 ms. */
export function startLocalWorker(
  broker: Broker,
  registry: Registry,
  options: Omit<WorkerOptions, 'signal'>,
): () => Promise<void> {
  const controller = new AbortController();
  const running = runLocalWorker(broker, registry, {
    waitMs: 200,
    ...options,
    signal: controller.signal,
  });
  return () => {
    controller.abort();
    return running;
  };
}

/** Options of {@link runWorkerUntil}. */
export interface RunUntilOptions {
  readonly queue: string;
  /** Stop once this holds of the messages settled so far. */
  readonly done: (events: readonly WorkerEvent[]) => boolean;
  /** What the test waited for, shown when `timeoutMs` passes first. */
  readonly describe: () => string;
  /** Called once the worker runs (a producer's sends, say). */
  readonly meanwhile?: () => Promise<unknown>;
  /** @defaultValue 10 */
  readonly concurrency?: number;
  /** @defaultValue 20 000 */
  readonly timeoutMs?: number;
}

/**
 * Runs our local worker on one queue until `done` holds, then stops it.
 *
 * @returns every settled message, in settling order
 * @throws what the worker failed with, or an Error naming `describe()` after `timeoutMs`
 */
export async function runWorkerUntil(
  broker: Broker,
  registry: Registry,
  options: RunUntilOptions,
): Promise<WorkerEvent[]> {
  const events: WorkerEvent[] = [];
  const controller = new AbortController();
  let failure: unknown;
  const worker = runLocalWorker(broker, registry, {
    queues: [options.queue],
    concurrency: options.concurrency ?? 10,
    waitMs: 200,
    restoreEveryMs: 60_000,
    signal: controller.signal,
    onOutcome: (event) => events.push(event),
  }).catch((error: unknown) => {
    failure = error;
  });
  try {
    await options.meanwhile?.();
    await until(
      () => options.done(events) || failure !== undefined,
      options.timeoutMs ?? 20_000,
      options.describe,
    );
  } finally {
    controller.abort();
    await worker;
  }
  if (failure !== undefined) throw failure;
  return events;
}

/** Our worker and a Python Celery worker side by side, each on a queue of its own. */
export interface WorkersBesidePython {
  /** The queue our tasks are declared on and our worker consumes. */
  readonly tsQueue: string;
  /** The queue the Python worker (`workflow_app` included) consumes. */
  readonly pyQueue: string;
  readonly registry: Registry;
  readonly broker: Broker;
  readonly python: CeleryWorker;
  /** Our worker's outcomes so far, in order. */
  readonly events: WorkerEvent[];
  /** Stops both workers and closes the broker; resolves with the Python workers' node names. */
  stop(): Promise<string[]>;
}

/**
 * Starts our local worker (tasks of `ourApp(tsQueue)`) and a real Python Celery worker on
 * `url`, each on a fresh queue named after `label`.
 */
export async function startBesidePython(
  kind: 'redis' | 'rabbitmq',
  url: string,
  ourApp: (queue: string) => Registry,
  label: string,
): Promise<WorkersBesidePython> {
  const tsQueue = `sc-${label}-ts-${randomUUID()}`;
  const pyQueue = `sc-${label}-py-${randomUUID()}`;
  const registry = ourApp(tsQueue);
  const broker = createBroker(
    { kind, url },
    { queues: registry.queues, logger: { warn: () => {} } },
  );
  const python = await startCeleryWorker({
    broker: url,
    queue: pyQueue,
    include: ['workflow_app'],
  });
  const events: WorkerEvent[] = [];
  const stopOurs = startLocalWorker(broker, registry, {
    queues: [tsQueue],
    onOutcome: (event) => events.push(event),
  });
  return {
    tsQueue,
    pyQueue,
    registry,
    broker,
    python,
    events,
    async stop() {
      await stopOurs();
      const hostnames = await stopCeleryWorkers();
      await broker.close();
      return hostnames;
    },
  };
}
