/**
 * Streaming dispatch: received messages are admitted, grouped into executions (one message for
 * the local executor, up to `batchSize` messages of one task for a Lambda invoke), and started
 * as soon as a slot is free; each message is settled as soon as its own outcome is known. A slow
 * message holds its own slot and nothing else, so it delays only what queues behind a full
 * pipeline.
 *
 * An execution that fails as a whole (invoke error, timeout, crash) re-queues its messages
 * without spending a task retry, up to the poison cap. An execution refused because the executor
 * is throttled goes back to the front of the line, and the flow narrows how many executions it
 * runs at once (halved on a throttle, widened by one per success) and pauses before the next.
 *
 * A workflow goes on from here, where the broker is: each settlement carries its message's
 * continuations, published before it is settled; if they cannot be published, the message is
 * re-queued as a failed attempt (it runs again and republishes the same ids), never settled done.
 *
 * With a result backend, a task that tracks its start (Celery's `track_started`) has its STARTED
 * state stored before its execution begins, and awaited: the final state, stored only after the
 * execution, can never be overtaken by it. How messages are settled is in `flow-settler.ts`;
 * how many executions run at once, in `concurrency-limit.ts`.
 *
 * With Celery events on, the flow tells them for every way a task runs: `task-received` at
 * admission, `task-started` as its execution starts, its outcome's once settled (`task-events.ts`).
 */
import type { Broker, BrokerLogger, Delivery } from '../brokers/broker.js';
import { admitMessage } from '../core/admit.js';
import { toError } from '../core/errors.js';
import type { TaskMessage } from '../core/message.js';
import type { Registry } from '../core/registry.js';
import { tracksStarted } from '../core/result-meta.js';
import { type TaskOutcome, toTaskOutcome } from '../core/task-outcome.js';
import type { ActiveTasks } from './active-tasks.js';
import { ConcurrencyLimit } from './concurrency-limit.js';
import type { EffectsBackend } from './effects.js';
import type { EventSender } from './event-sender.js';
import type { WorkerEvent } from './events.js';
import { isThrottled, type TaskExecutor } from './executor.js';
import { FlowSettler, type HeldItem } from './flow-settler.js';
import { announcesReceipt } from './task-events.js';

/** The result backend as the flow uses it: effects, and the STARTED state when it can. */
export interface FlowBackend extends EffectsBackend {
  /** Celery's `task_track_started`: the default of tasks that set no `trackStarted`. */
  readonly config?: { readonly trackStarted?: boolean };
  /** Stores the STARTED state of messages about to run (absent: none is stored). */
  markStarted?(messages: readonly TaskMessage[]): Promise<void>;
}

/** Options of a {@link DispatchFlow}. */
export interface FlowOptions {
  /** Executions at once: tasks (local executor) or invokes (Lambda executor). */
  readonly slots: number;
  /** Messages received ahead of a free slot, so the next execution starts without a round trip. */
  readonly readAhead: number;
  /** Failed attempts to run a message before it is dead-lettered as poison. */
  readonly poisonCap: number;
  readonly now: () => number;
  readonly onOutcome?: ((event: WorkerEvent) => void) | undefined;
  readonly logger: BrokerLogger;
  /**
   * The result backend, if one is configured: chords can then be honoured, outcomes stored and,
   * for tasks that track it, the STARTED state. Without one, chord parts and chords sent as
   * continuations are dead-lettered at admission.
   */
  readonly resultBackend?: FlowBackend | null | undefined;
  /** Where Celery events go; absent: none are built. */
  readonly events?: EventSender | undefined;
  /** Told what runs, for remote control's `inspect active`; absent: nobody asks. */
  readonly active?: ActiveTasks | undefined;
}

interface Item extends HeldItem {
  /** Its STARTED state is stored before it runs. */
  readonly started: boolean;
}

/** Messages of one task that run in one execution. */
interface Execution {
  readonly task: string;
  readonly items: Item[];
}

/** A stream of executions over held deliveries, and their settlements. */
export class DispatchFlow {
  readonly #registry: Registry;
  readonly #executor: TaskExecutor;
  readonly #options: FlowOptions;
  readonly #batchSize: number;
  readonly #settler: FlowSettler;
  readonly #concurrency: ConcurrencyLimit;
  /** Executions waiting for a slot, oldest first. */
  readonly #ready: Execution[] = [];
  /** The waiting execution of each task that still has room for more messages. */
  readonly #open = new Map<string, Execution>();
  #running = 0;
  /** Messages accepted and not yet settled. */
  #held = 0;
  #pauseTimer: NodeJS.Timeout | undefined;
  #settleError: Error | undefined;
  #wake = new Set<() => void>();

  constructor(
    broker: Pick<Broker, 'settle' | 'publish'>,
    registry: Registry,
    executor: TaskExecutor,
    options: FlowOptions,
  ) {
    this.#registry = registry;
    this.#executor = executor;
    this.#options = options;
    this.#batchSize = Math.max(1, executor.batchSize ?? 1);
    this.#concurrency = new ConcurrencyLimit(options.slots);
    this.#settler = new FlowSettler(broker, registry, options, (count, error) => {
      this.#held -= count;
      if (error) this.#settleError = error;
      this.#notify();
    });
  }

  /**
   * How many more messages to take now: the slots' worth plus the read-ahead, less what is held
   * (running, waiting, or being settled). Holds stay within that bound at every moment, so a
   * worker killed holding them re-runs at most that many (at-least-once).
   */
  room(): number {
    const capacity = this.#options.slots * this.#batchSize + this.#options.readAhead;
    return Math.max(0, capacity - this.#held);
  }

  /** Messages accepted and not yet settled. */
  get held(): number {
    return this.#held;
  }

  /** Executions running now. */
  get running(): number {
    return this.#running;
  }

  /** Admits and queues received deliveries; what cannot run is settled at once. */
  accept(deliveries: readonly Delivery[]): void {
    const now = this.#options.now();
    const backend = this.#options.resultBackend;
    const trackByDefault = backend?.config?.trackStarted ?? false;
    const { events } = this.#options;
    const received: TaskMessage[] = [];
    for (const delivery of deliveries) {
      this.#held++;
      const { result } = delivery;
      if (!result.ok) {
        this.#settler.invalid(delivery, result);
        continue;
      }
      const message = result.message;
      const admission = admitMessage(this.#registry, message, now, { results: Boolean(backend) });
      const outcome = admission.kind === 'settle' ? toTaskOutcome(admission.outcome) : undefined;
      if (events && announcesReceipt(outcome)) received.push(message);
      if (admission.kind === 'settle') {
        this.#settler.outcome({ delivery, message }, outcome as TaskOutcome);
        continue;
      }
      // Decided here, where the task is known; no marker, no STARTED (and no round trip).
      const started =
        backend?.markStarted !== undefined &&
        tracksStarted(admission.task.options, message, trackByDefault);
      this.#enqueue({ delivery, message, started });
    }
    events?.received(received);
    this.#pump();
  }

  /** Resolves once {@link room} is above 0, or `signal` aborts. */
  async waitForRoom(signal?: AbortSignal): Promise<void> {
    while (this.room() === 0 && !signal?.aborted) await this.#changed(signal);
  }

  /** Resolves once every accepted message is settled (or its settlement failed). */
  async idle(): Promise<void> {
    while (this.#held > 0) await this.#changed();
  }

  /**
   * Puts back the messages waiting for a slot, unrun and without a failure counted (a poller at
   * its deadline must not hold them). Running executions finish as they would.
   */
  releaseWaiting(): void {
    for (const execution of this.#ready.splice(0)) this.#settler.release(execution.items);
    this.#open.clear();
    this.#clearPause();
  }

  /** The last settlement failure since the previous call, if any (the broker is in trouble). */
  takeSettleError(): Error | undefined {
    const error = this.#settleError;
    this.#settleError = undefined;
    return error;
  }

  #enqueue(item: Item): void {
    const task = item.message.task;
    let execution = this.#open.get(task);
    if (!execution) {
      execution = { task, items: [] };
      this.#ready.push(execution);
      this.#open.set(task, execution);
    }
    execution.items.push(item);
    if (execution.items.length >= this.#batchSize) this.#open.delete(task);
  }

  #pump(): void {
    const now = this.#options.now();
    const { pausedUntil } = this.#concurrency;
    if (now < pausedUntil) {
      this.#pauseTimer ??= setTimeout(() => {
        this.#pauseTimer = undefined;
        this.#pump();
      }, pausedUntil - now);
      return;
    }
    while (this.#ready.length > 0 && this.#running < this.#concurrency.limit) {
      const execution = this.#ready.shift() as Execution;
      if (this.#open.get(execution.task) === execution) this.#open.delete(execution.task);
      void this.#run(execution);
    }
  }

  async #run(execution: Execution): Promise<void> {
    this.#running++;
    const messages = execution.items.map((item) => item.message);
    this.#options.events?.started(messages);
    this.#options.active?.started(messages);
    let outcomes: readonly TaskOutcome[] | undefined;
    let failure: Error | undefined;
    try {
      const started = execution.items.filter((item) => item.started);
      // Only then a turn of the event loop: without STARTED, execute() starts synchronously.
      if (started.length > 0) await this.#markStarted(started);
      outcomes = await this.#executor.execute(execution.task, messages);
      if (outcomes.length !== messages.length) {
        throw new Error(
          `executor returned ${outcomes.length} outcomes for ${messages.length} messages`,
        );
      }
    } catch (error) {
      failure = toError(error);
    }
    this.#running--;
    this.#options.events?.ended(messages.length);
    this.#options.active?.ended(messages);
    if (failure && isThrottled(failure)) {
      this.#throttled(execution);
    } else {
      this.#settler.execution(execution.items, outcomes, failure);
      this.#concurrency.passed();
    }
    this.#pump();
    this.#notify();
  }

  /**
   * Stores STARTED for the items that track it, and waits for it: the final state is stored only
   * after the execution, so it always lands last. A backend that cannot store it fails the
   * execution as a whole (re-queued, no retry spent): its final state could not be stored either.
   */
  async #markStarted(items: readonly Item[]): Promise<void> {
    try {
      await this.#options.resultBackend?.markStarted?.(items.map((item) => item.message));
    } catch (error) {
      const cause = toError(error);
      throw new Error(`STARTED could not be stored: ${cause.message}`, { cause });
    }
  }

  /** Back to the front of the line; fewer executions at once; a pause before the next. */
  #throttled(execution: Execution): void {
    this.#ready.unshift(execution);
    const pause = this.#concurrency.throttled(this.#running, this.#options.now());
    this.#options.logger.warn(
      `worker: invoking ${execution.task} is throttled; ${this.#concurrency.limit} at once, next in ${pause} ms`,
    );
  }

  #clearPause(): void {
    if (this.#pauseTimer) clearTimeout(this.#pauseTimer);
    this.#pauseTimer = undefined;
  }

  #changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#wake.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.#wake.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  #notify(): void {
    for (const wake of [...this.#wake]) wake();
  }
}
