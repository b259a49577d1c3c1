/**
 * The long-lived worker that runs tasks in its own process (`serverless-celery worker
 * --invoke local`, like `sentry run worker`): receive a batch, run each message, settle the batch
 * in one round trip, and keep the broker's housekeeping going (due delays, stale holds).
 */
import type { Broker, BrokerLogger, Delivery, SettleItem } from '../brokers/broker.js';
import type { Registry } from '../core/registry.js';
import { type RunOutcome, runMessage } from '../core/run-task.js';
import { settlementFor, settlementForInvalid } from './settlement.js';

/** One settled message, as reported to {@link WorkerOptions.onOutcome}. */
export interface WorkerEvent {
  readonly queue: string;
  readonly delivery: Delivery;
  /** `invalid` when the message could not be decoded. */
  readonly outcome: RunOutcome | { readonly kind: 'invalid'; readonly detail: string };
}

/** Options of {@link runLocalWorker}. */
export interface WorkerOptions {
  /** Queues to consume, served round-robin. */
  readonly queues: readonly string[];
  /** Messages run at once (and taken per receive). @defaultValue 10 */
  readonly concurrency?: number;
  /** Stops the worker: it finishes and settles what it holds, then returns. */
  readonly signal?: AbortSignal;
  /** Longest wait for messages per receive, ms. @defaultValue 1000 */
  readonly waitMs?: number;
  /** How often to restore stale holds of dead consumers, ms. @defaultValue 10000 */
  readonly restoreEveryMs?: number;
  /** Called once per settled message. */
  readonly onOutcome?: (event: WorkerEvent) => void;
  /** Where broker trouble is reported. @defaultValue console */
  readonly logger?: BrokerLogger;
}

/**
 * Runs until `signal` aborts. Every message is settled only after its outcome is known; a
 * message held when the process dies is restored by the broker (Redis: after the visibility
 * timeout; RabbitMQ: at once).
 */
export async function runLocalWorker(
  broker: Broker,
  registry: Registry,
  options: WorkerOptions,
): Promise<void> {
  const concurrency = options.concurrency ?? 10;
  const waitMs = options.waitMs ?? 1000;
  const restoreEveryMs = options.restoreEveryMs ?? 10_000;
  const logger = options.logger ?? console;
  let lastRestore = 0;
  let turn = 0;
  let failures = 0;
  while (!options.signal?.aborted) {
    const queue = options.queues[turn++ % options.queues.length] as string;
    try {
      if (broker.restoreStale && Date.now() - lastRestore >= restoreEveryMs) {
        lastRestore = Date.now();
        await broker.restoreStale();
      }
      await broker.promoteDue?.(queue);
      const deliveries = await broker.receive(queue, {
        max: concurrency,
        waitMs: options.queues.length > 1 ? Math.min(waitMs, 100) : waitMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (deliveries.length > 0)
        await processBatch(broker, registry, deliveries, options.onOutcome);
      failures = 0;
    } catch (error) {
      // The broker is down or restarting: what we hold is restored by the broker (Redis after
      // the visibility timeout, RabbitMQ at once), so back off and try again.
      failures++;
      const delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
      logger.warn(`worker: ${(error as Error).message}; retrying in ${delay} ms`);
      await sleep(delay, options.signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * Runs a batch of held deliveries concurrently and settles them together. One message's failure
 * never affects its neighbours.
 */
export async function processBatch(
  broker: Broker,
  registry: Registry,
  deliveries: readonly Delivery[],
  onOutcome?: (event: WorkerEvent) => void,
): Promise<WorkerEvent[]> {
  const events = await Promise.all(
    deliveries.map(async (delivery): Promise<[SettleItem, WorkerEvent]> => {
      const { result } = delivery;
      if (!result.ok) {
        const event = {
          queue: delivery.queue,
          delivery,
          outcome: { kind: 'invalid', detail: result.error.message },
        } as const;
        return [{ delivery, settlement: settlementForInvalid(result) }, event];
      }
      const outcome = await runMessage(registry, result.message);
      const settlement = settlementFor(outcome, result.message);
      return [
        { delivery, settlement },
        { queue: delivery.queue, delivery, outcome },
      ];
    }),
  );
  await broker.settle(events.map(([item]) => item));
  for (const [, event] of events) onOutcome?.(event);
  return events.map(([, event]) => event);
}
