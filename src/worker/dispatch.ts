/**
 * Dispatching a fixed set of held deliveries (an Amazon MQ event's batch, a test's batch): the
 * streaming flow of the worker run until every message is settled. One task's failure never
 * fails its neighbours; a failure to run an execution at all re-queues its messages without
 * spending a task retry, up to a poison cap, then dead-letters them.
 */
import type { Broker, BrokerLogger, Delivery } from '../brokers/broker.js';
import type { EventDispatcher } from '../core/event-dispatcher.js';
import type { Registry } from '../core/registry.js';
import { EventSender } from './event-sender.js';
import type { WorkerEvent } from './events.js';
import type { TaskExecutor } from './executor.js';
import { DispatchFlow, type FlowBackend } from './flow.js';
import { type PresenceMode, startPresence } from './worker-presence.js';

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
  /**
   * Where Celery events are sent (Celery's `worker_send_task_events`, `-E`): each message's
   * `task-received`, `task-started` and outcome, and the worker's presence. Sending never delays
   * or fails a settlement; a failed send is logged once per burst. @defaultValue none: no event
   * is built
   */
  readonly events?: EventDispatcher | null;
  /**
   * With `events`: `process` for a long-lived worker (online, heartbeats, offline at the end),
   * `invocation` for a Lambda environment (online at its first call, heartbeats, never offline).
   * @defaultValue `process` for the worker loop, `invocation` for {@link dispatchBatch}
   */
  readonly presence?: PresenceMode;
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
  const logger = options.logger ?? console;
  const sender = options.events ? EventSender.of(options.events, logger) : undefined;
  const flow = new DispatchFlow(broker, registry, executor, {
    slots: options.maxInFlight ?? 100,
    readAhead: 0,
    poisonCap: options.poisonCap ?? 5,
    now: options.now ?? Date.now,
    onOutcome: (event) => {
      events.push(event);
      options.onOutcome?.(event);
    },
    logger,
    resultBackend: options.resultBackend,
    events: sender,
  });
  const release = () => flow.releaseWaiting();
  options.signal?.addEventListener('abort', release, { once: true });
  const presence = sender && startPresence(sender, { mode: options.presence ?? 'invocation' });
  try {
    flow.accept(deliveries);
    if (options.signal?.aborted) release();
    await flow.idle();
  } finally {
    options.signal?.removeEventListener('abort', release);
    // Sent before returning: a Lambda environment is frozen once its handler returns.
    await presence?.();
  }
  const failure = flow.takeSettleError();
  if (failure) throw failure;
  return events;
}

export type { DispatchOutcome, WorkerEvent } from './events.js';
