/**
 * The long-lived worker loop (`serverless-celery worker`, like `sentry run worker`, and the Lambda
 * poller): keeps up to `concurrency` executions running (tasks in this process, or invokes of
 * the tasks' functions), takes new messages as slots free, settles each message as soon as its
 * own outcome is known, and keeps the broker's housekeeping going (due delays, stale holds).
 *
 * One receive is in flight at a time, sized to the free slots plus a read-ahead, so a message
 * is already held when a slot frees; settlements that complete together go to the broker in one
 * call, beside the next receive.
 */
import type { Broker, BrokerLogger, Delivery } from '../brokers/broker.js';
import { toError } from '../core/errors.js';
import { workerNodeName } from '../core/event-dispatcher.js';
import type { Registry } from '../core/registry.js';
import type { ControlMailbox } from '../core/remote-control.js';
import { ActiveTasks } from './active-tasks.js';
import { type DispatchOptions, dispatchBatch, type WorkerEvent } from './dispatch.js';
import { EventSender } from './event-sender.js';
import { localExecutor, type TaskExecutor, workerRunOptions } from './executor.js';
import { DispatchFlow } from './flow.js';
import { startRemoteControl } from './remote-control.js';
import { startPresence } from './worker-presence.js';

/** Most delayed messages moved per `promoteDue` call. */
const PROMOTE_BATCH = 1000;
/**
 * Least time between two promotions of a queue's delayed messages while it is busy (one round
 * trip saved per receive). An idle queue is promoted once per receive wait (`waitMs`).
 */
const PROMOTE_EVERY_MS = 100;

/** Options of {@link runWorker}. */
export interface WorkerOptions extends DispatchOptions {
  /** Queues to consume, served round-robin. */
  readonly queues: readonly string[];
  /** Runs the tasks. @defaultValue in this process ({@link localExecutor}) */
  readonly executor?: TaskExecutor;
  /**
   * Executions at once: tasks running at once with the local executor, invokes in flight with
   * the Lambda executor (each of up to its `batchSize` messages). @defaultValue 10
   */
  readonly concurrency?: number;
  /**
   * Celery's `worker_prefetch_multiplier`: the worker holds at most this many times what it
   * runs at once (`concurrency × executor.batchSize`), the rest waiting for a free slot, so that
   * as executions end the next ones start without waiting for a receive. What waits is put back
   * unrun when the worker stops. 1 takes only what can start at once. @defaultValue 4
   */
  readonly prefetchMultiplier?: number;
  /**
   * Stops the worker: it stops taking, puts back what it took and has not started, lets what
   * runs finish and settles it, then returns.
   */
  readonly signal?: AbortSignal;
  /** Longest wait for messages per receive, ms. @defaultValue 1000 */
  readonly waitMs?: number;
  /** How often to restore stale holds of dead consumers, ms. @defaultValue 10000 */
  readonly restoreEveryMs?: number;
  /** Stop taking messages once this returns false (a Lambda drain's deadline). */
  readonly keepTaking?: () => boolean;
  /** Where broker trouble is reported. @defaultValue console */
  readonly logger?: BrokerLogger;
  /**
   * Answers Celery's remote control on this mailbox (`celery inspect ping`, `active`,
   * `registered`) as the events' node name, else `celery@<host>`, while the worker runs. The
   * caller closes it after the worker returns. @defaultValue none
   */
  readonly remoteControl?: ControlMailbox | null;
  /**
   * The node name remote control answers as (Celery's `-n`); give `events` the same.
   * @defaultValue the events' hostname, else `celery@<host>`
   */
  readonly hostname?: string;
}

/**
 * Runs until `signal` aborts (or `keepTaking` says stop). Every message is settled only after its
 * outcome is known; a message held when the process dies is restored by the broker (Redis: after
 * the visibility timeout; RabbitMQ: at once).
 */
export async function runWorker(
  broker: Broker,
  registry: Registry,
  options: WorkerOptions,
): Promise<void> {
  const executor = options.executor ?? localExecutor(registry);
  const slots = options.concurrency ?? 10;
  const waitMs = options.waitMs ?? 1000;
  const restoreEveryMs = options.restoreEveryMs ?? 10_000;
  const logger = options.logger ?? console;
  const { signal } = options;
  const keepTaking = () => !signal?.aborted && (options.keepTaking?.() ?? true);
  const sender = options.events ? EventSender.of(options.events, logger) : undefined;
  const active = options.remoteControl ? new ActiveTasks() : undefined;
  const flow = new DispatchFlow(broker, registry, executor, {
    slots,
    readAhead: Math.floor(
      Math.max(0, (options.prefetchMultiplier ?? 4) - 1) * slots * (executor.batchSize ?? 1),
    ),
    poisonCap: options.poisonCap ?? 5,
    now: options.now ?? Date.now,
    onOutcome: options.onOutcome,
    logger,
    resultBackend: options.resultBackend,
    events: sender,
    active,
  });
  if (options.remoteControl && active) {
    await startRemoteControl({
      mailbox: options.remoteControl,
      hostname: options.hostname ?? options.events?.hostname ?? workerNodeName(),
      registry,
      active,
      logger,
    }).catch((error: unknown) => {
      logger.warn(`worker: remote control is off: ${toError(error).message}`);
    });
  }
  let lastRestore = 0;
  let turn = 0;
  let failures = 0;
  /** When each queue's delayed messages are next promoted (`Date.now()` ms). */
  const promoteAt = new Map<string, number>();
  /** Housekeeping, then a receive of up to `max` from the next queue in turn. */
  const take = async (max: number): Promise<Delivery[]> => {
    const queue = options.queues[turn++ % options.queues.length] as string;
    if (broker.restoreStale && Date.now() - lastRestore >= restoreEveryMs) {
      lastRestore = Date.now();
      await broker.restoreStale();
    }
    if (broker.promoteDue && Date.now() >= (promoteAt.get(queue) ?? 0)) {
      const moved = await broker.promoteDue(queue, PROMOTE_BATCH);
      // A full batch means more are due: promote again on the queue's next turn.
      promoteAt.set(queue, moved >= PROMOTE_BATCH ? 0 : Date.now() + PROMOTE_EVERY_MS);
    }
    // While executions run, a receive returns as soon as anything arrives; an idle worker waits.
    const wait = options.queues.length > 1 ? Math.min(waitMs, 100) : waitMs;
    return broker.receive(queue, { max, waitMs: wait, ...(signal ? { signal } : {}) });
  };
  const backOff = async (error: Error) => {
    // The broker is down or restarting: what we hold is restored by the broker (Redis after
    // the visibility timeout, RabbitMQ at once), so back off and try again.
    failures++;
    const delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
    logger.warn(`worker: ${error.message}; retrying in ${delay} ms`);
    await sleep(delay, signal);
  };
  const release = () => flow.releaseWaiting();
  signal?.addEventListener('abort', release, { once: true });
  const presence = sender && startPresence(sender, { mode: options.presence ?? 'process' });
  try {
    while (keepTaking()) {
      await flow.waitForRoom(signal);
      if (!keepTaking()) break;
      let taken = true;
      try {
        const deliveries = await take(flow.room());
        flow.accept(deliveries);
        // A receive that found nothing without waiting (a broker at its deadline, a fake) must
        // not turn this loop into one that starves timers and I/O: let them run first.
        if (deliveries.length === 0) await new Promise((resolve) => setImmediate(resolve));
      } catch (error) {
        taken = false;
        await backOff(error as Error);
      }
      const settleError = flow.takeSettleError();
      if (settleError) await backOff(settleError);
      else if (taken) failures = 0;
    }
    // Taken but not started: put back now, so a deadline never waits for a slot to free.
    release();
    await flow.idle();
    const settleError = flow.takeSettleError();
    if (settleError) logger.warn(`worker: ${settleError.message}; left to the broker to restore`);
  } finally {
    signal?.removeEventListener('abort', release);
    // Offline (or the last beat) after the last outcome's events, before returning.
    await presence?.();
  }
}

/** {@link runWorker} running every task in this process. */
export function runLocalWorker(
  broker: Broker,
  registry: Registry,
  options: WorkerOptions,
): Promise<void> {
  const executor = localExecutor(registry, workerRunOptions(options));
  return runWorker(broker, registry, { ...options, executor });
}

/** Runs a batch of held deliveries in this process and settles them together. */
export function processBatch(
  broker: Broker,
  registry: Registry,
  deliveries: readonly Delivery[],
  onOutcome?: (event: WorkerEvent) => void,
): Promise<WorkerEvent[]> {
  return dispatchBatch(
    broker,
    registry,
    deliveries,
    localExecutor(registry),
    onOutcome ? { onOutcome } : {},
  );
}

/**
 * Waits `ms`, or less if `signal` aborts. The abort listener goes when the wait ends either way:
 * a worker backing off from a flapping broker would otherwise add one per failure to a signal
 * that lives as long as the process.
 */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export type { WorkerEvent } from './events.js';
