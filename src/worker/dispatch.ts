/**
 * Dispatching a fixed set of held deliveries (an Amazon MQ event's batch, a test's batch): the
 * streaming flow of the worker run until every message is settled. One task's failure never
 * fails its neighbours; a failure to run an execution at all re-queues its messages without
 * spending a task retry, up to a poison cap, then dead-letters them.
 */
import type { Broker, BrokerLogger, Delivery } from '../brokers/broker.js';
import type { Registry } from '../core/registry.js';
import type { WorkerEvent } from './events.js';
import type { TaskExecutor } from './executor.js';
import { DispatchFlow, type FlowBackend } from './flow.js';

/** Options shared by {@link dispatchBatch} and the worker loop. */
export interface DispatchOptions {
  /** Failed attempts to run a message before it is dead-lettered as poison. @defaultValue 5 */
  readonly poisonCap?: number;
  /** Clock. @defaultValue Date.now */
  readonly now?: () => number;
  /** Called once per settled message. */
  readonly onOutcome?: (event: WorkerEvent) => void;
  /**
   * The result backend, if one is configured: outcomes are stored, and STARTED for tasks that
   * track it. Without one, chord parts and chords sent as continuations are dead-lettered at
   * admission. @defaultValue none
   */
  readonly resultBackend?: FlowBackend | null;
}

/** Options of {@link dispatchBatch}. */
export interface DispatchBatchOptions extends DispatchOptions {
  /** Executions at once. @defaultValue 100 */
  readonly maxInFlight?: number;
  /** Stops starting executions: those still waiting are put back unrun. */
  readonly signal?: AbortSignal;
  /** Where throttling is reported. @defaultValue console */
  readonly logger?: BrokerLogger;
}

/**
 * Runs and settles a batch: each message is settled as soon as its own outcome is known.
 * Messages that cannot run anywhere (undecodable, unknown task, expired, too large, a workflow
 * we cannot honour) and messages not yet due are settled without bothering an executor. A
 * workflow's continuations are published before their message is settled.
 *
 * @returns one event per message, in the order they were settled
 * @throws the broker's error when a settlement failed (every other message was still settled)
 */
export async function dispatchBatch(
  broker: Pick<Broker, 'settle' | 'publish'>,
  registry: Registry,
  deliveries: readonly Delivery[],
  executor: TaskExecutor,
  options: DispatchBatchOptions = {},
): Promise<WorkerEvent[]> {
  const events: WorkerEvent[] = [];
  const flow = new DispatchFlow(broker, registry, executor, {
    slots: options.maxInFlight ?? 100,
    readAhead: 0,
    poisonCap: options.poisonCap ?? 5,
    now: options.now ?? Date.now,
    onOutcome: (event) => {
      events.push(event);
      options.onOutcome?.(event);
    },
    logger: options.logger ?? console,
    resultBackend: options.resultBackend,
  });
  const release = () => flow.releaseWaiting();
  options.signal?.addEventListener('abort', release, { once: true });
  try {
    flow.accept(deliveries);
    if (options.signal?.aborted) release();
    await flow.idle();
  } finally {
    options.signal?.removeEventListener('abort', release);
  }
  const failure = flow.takeSettleError();
  if (failure) throw failure;
  return events;
}

export type { DispatchOutcome, WorkerEvent } from './events.js';
