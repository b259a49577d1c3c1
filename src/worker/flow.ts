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
 */
import type { Broker, BrokerLogger, Delivery } from '../brokers/broker.js';
import { admitMessage } from '../core/admit.js';
import { routeFor } from '../core/canvas.js';
import { toError } from '../core/errors.js';
import type { TaskMessage } from '../core/message.js';
import type { Registry } from '../core/registry.js';
import {
  type Settlement,
  type SettlementOptions,
  settlementFor,
  settlementForInvalid,
  settlementForInvokeFailure,
  settlementForRelease,
} from '../core/settlement.js';
import { type TaskOutcome, toTaskOutcome } from '../core/task-outcome.js';
import { type EffectsBackend, requeueAfterEffects } from './effects.js';
import type { DispatchOutcome, WorkerEvent } from './events.js';
import { isThrottled, type TaskExecutor } from './executor.js';
import { SettleQueue } from './settle-queue.js';

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
   * The result backend, if one is configured: chords can then be honoured. Without one, chord
   * parts and chords sent as continuations are dead-lettered at admission.
   */
  readonly resultBackend?: EffectsBackend | null | undefined;
}

interface Item {
  readonly delivery: Delivery;
  readonly message: TaskMessage;
}

/** Messages of one task that run in one execution. */
interface Execution {
  readonly task: string;
  readonly items: Item[];
}

/** Longest pause after throttles in a row, ms. */
const MAX_THROTTLE_PAUSE_MS = 5_000;

/** A stream of executions over held deliveries, and their settlements. */
export class DispatchFlow {
  readonly #registry: Registry;
  readonly #executor: TaskExecutor;
  readonly #options: FlowOptions;
  readonly #batchSize: number;
  readonly #settles: SettleQueue<WorkerEvent>;
  /** Executions waiting for a slot, oldest first. */
  readonly #ready: Execution[] = [];
  /** The waiting execution of each task that still has room for more messages. */
  readonly #open = new Map<string, Execution>();
  #running = 0;
  /** Messages accepted and not yet settled. */
  #held = 0;
  /** Executions allowed at once: `slots`, narrowed while the executor throttles. */
  #limit: number;
  #throttles = 0;
  #pausedUntil = 0;
  #pauseTimer: NodeJS.Timeout | undefined;
  #settleError: Error | undefined;
  #wake = new Set<() => void>();
  /** Queue of a continuation whose signature names none: the task's, else Celery's default. */
  readonly #route: (task: string) => string;
  /** Set when a backend records outcomes: which tasks store no result. */
  readonly #results: SettlementOptions['results'];

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
    this.#limit = options.slots;
    this.#route = routeFor(registry);
    this.#results = options.resultBackend?.record
      ? { ignoreResult: (task) => ignoresResult(registry, task) }
      : undefined;
    this.#settles = new SettleQueue(
      broker,
      (entries, error) => {
        this.#held -= entries.length;
        if (error) this.#settleError = error;
        else for (const { tag } of entries) this.#report(tag);
        this.#notify();
      },
      {
        backend: options.resultBackend,
        onEffectsFailed: (entry, error) =>
          requeueAfterEffects(entry, error, { ...options, now: options.now() }),
      },
    );
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
    for (const delivery of deliveries) {
      this.#held++;
      const { result } = delivery;
      if (!result.ok) {
        const outcome = { kind: 'invalid', detail: result.error.message } as const;
        this.#settle(delivery, settlementForInvalid(result), outcome);
        continue;
      }
      const message = result.message;
      const admission = admitMessage(this.#registry, message, now, {
        results: Boolean(this.#options.resultBackend),
      });
      if (admission.kind === 'settle') {
        const outcome = toTaskOutcome(admission.outcome);
        this.#settle(delivery, this.#settlementFor(outcome, message), outcome);
        continue;
      }
      this.#enqueue({ delivery, message });
    }
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
    const now = this.#options.now();
    for (const execution of this.#ready.splice(0)) {
      for (const { delivery, message } of execution.items) {
        const outcome = { kind: 'released', detail: 'not started before the deadline' } as const;
        this.#settle(delivery, settlementForRelease(message, now), outcome);
      }
    }
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
    if (now < this.#pausedUntil) {
      this.#pauseTimer ??= setTimeout(() => {
        this.#pauseTimer = undefined;
        this.#pump();
      }, this.#pausedUntil - now);
      return;
    }
    while (this.#ready.length > 0 && this.#running < this.#limit) {
      const execution = this.#ready.shift() as Execution;
      if (this.#open.get(execution.task) === execution) this.#open.delete(execution.task);
      void this.#run(execution);
    }
  }

  async #run(execution: Execution): Promise<void> {
    this.#running++;
    const messages = execution.items.map((item) => item.message);
    let outcomes: readonly TaskOutcome[] | undefined;
    let failure: Error | undefined;
    try {
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
    if (failure && isThrottled(failure)) {
      this.#throttled(execution);
    } else {
      this.#settleExecution(execution, outcomes, failure);
      this.#throttles = 0;
      this.#limit = Math.min(this.#options.slots, this.#limit + 1);
    }
    this.#pump();
    this.#notify();
  }

  #settleExecution(
    execution: Execution,
    outcomes: readonly TaskOutcome[] | undefined,
    failure: Error | undefined,
  ): void {
    const now = this.#options.now();
    execution.items.forEach(({ delivery, message }, index) => {
      if (failure || !outcomes) {
        const error = failure ?? new Error('no outcome');
        const decided = settlementForInvokeFailure(message, error, this.#options.poisonCap, now);
        const detail = `${error.name}: ${error.message}`;
        const { failures, dead } = decided;
        this.#settle(delivery, decided.settlement, {
          kind: 'invoke-failed',
          detail,
          failures,
          dead,
        });
        return;
      }
      const outcome = outcomes[index] as TaskOutcome;
      this.#settle(delivery, this.#settlementFor(outcome, message), outcome);
    });
  }

  #settlementFor(outcome: TaskOutcome, message: TaskMessage): Settlement {
    return settlementFor(outcome, message, { route: this.#route, results: this.#results });
  }

  /** Back to the front of the line; fewer executions at once; a pause before the next. */
  #throttled(execution: Execution): void {
    this.#ready.unshift(execution);
    this.#throttles++;
    this.#limit = Math.max(1, Math.min(this.#limit, Math.ceil((this.#running + 1) / 2)));
    const pause = Math.min(MAX_THROTTLE_PAUSE_MS, 100 * 2 ** (this.#throttles - 1));
    this.#pausedUntil = Math.max(this.#pausedUntil, this.#options.now() + pause);
    this.#options.logger.warn(
      `worker: invoking ${execution.task} is throttled; ${this.#limit} at once, next in ${pause} ms`,
    );
  }

  #settle(delivery: Delivery, settlement: Settlement, outcome: DispatchOutcome): void {
    this.#settles.push({
      item: { delivery, settlement },
      tag: { queue: delivery.queue, delivery, outcome },
    });
  }

  #report(event: WorkerEvent): void {
    try {
      this.#options.onOutcome?.(event);
    } catch (error) {
      // A reporting callback must not stop the settlements of the messages after it.
      this.#options.logger.warn(`worker: onOutcome threw: ${toError(error).message}`);
    }
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

function ignoresResult(registry: Registry, task: string): boolean {
  const found = registry.lookup(task);
  return found.kind === 'task' && found.task.options.ignoreResult;
}
