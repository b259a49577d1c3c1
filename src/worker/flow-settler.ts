/**
 * The settling side of a {@link DispatchFlow}: how each held message's outcome becomes a
 * {@link Settlement} (a task's outcome, a failed execution, a release, an undecodable message),
 * and the {@link SettleQueue} that performs their effects and hands them to the broker. The flow
 * decides *when* a message is settled; this decides *how*, and reports it (and, with Celery
 * events on, announces it: after the broker has it, so an event never delays a settlement).
 */
import type { Broker, Delivery } from '../brokers/broker.js';
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
import type { TaskOutcome } from '../core/task-outcome.js';
import type { DecodeFailure } from '../core/wire.js';
import { type EffectsBackend, requeueAfterEffects } from './effects.js';
import type { EventSender } from './event-sender.js';
import type { DispatchOutcome, WorkerEvent } from './events.js';
import { SettleQueue } from './settle-queue.js';
import { outcomeEvents } from './task-events.js';

/** A held message the flow has admitted. */
export interface HeldItem {
  readonly delivery: Delivery;
  readonly message: TaskMessage;
}

/** Options of a {@link FlowSettler}: the flow's own. */
export interface FlowSettlerOptions {
  readonly poisonCap: number;
  readonly now: () => number;
  readonly onOutcome?: ((event: WorkerEvent) => void) | undefined;
  readonly logger: { warn(message: string): void };
  readonly resultBackend?: EffectsBackend | null | undefined;
  /** Where Celery events go; absent: none are built. */
  readonly events?: EventSender | undefined;
}

/**
 * Called once per settle call, before its messages are reported, with how many left the flow
 * and the broker's error when it refused them (they stay with the broker, to be restored).
 */
export type SettledCount = (count: number, error?: Error) => void;

/** Builds the settlements of a flow's messages and sends them to the broker. */
export class FlowSettler {
  readonly #options: FlowSettlerOptions;
  readonly #queue: SettleQueue<WorkerEvent>;
  /** Queue of a continuation whose signature names none: the task's, else Celery's default. */
  readonly #route: (task: string) => string;
  /** Set when a backend records outcomes: which tasks store no result. */
  readonly #results: SettlementOptions['results'];

  constructor(
    broker: Pick<Broker, 'settle' | 'publish'>,
    registry: Registry,
    options: FlowSettlerOptions,
    onSettled: SettledCount,
  ) {
    this.#options = options;
    this.#route = routeFor(registry);
    this.#results = options.resultBackend?.record
      ? { ignoreResult: (task) => ignoresResult(registry, task) }
      : undefined;
    this.#queue = new SettleQueue(
      broker,
      (entries, error) => {
        // Waiters the flow wakes resume after these reports (promise callbacks run later).
        onSettled(entries.length, error);
        if (error) return;
        for (const { tag } of entries) this.#report(tag);
        // Refused settlements stay with the broker and run again: only these are announced.
        options.events?.push(entries.flatMap(({ tag }) => eventsOf(tag)));
      },
      {
        backend: options.resultBackend,
        onEffectsFailed: (entry, error) =>
          requeueAfterEffects(entry, error, { ...options, now: options.now() }),
      },
    );
  }

  /** Dead-letters an undecodable message. */
  invalid(delivery: Delivery, failure: DecodeFailure): void {
    const outcome = { kind: 'invalid', detail: failure.error.message } as const;
    this.#settle(delivery, settlementForInvalid(failure), outcome);
  }

  /** Settles a message by its task's outcome (or its admission's), continuations included. */
  outcome(item: HeldItem, outcome: TaskOutcome): void {
    const settlement = settlementFor(outcome, item.message, {
      route: this.#route,
      results: this.#results,
    });
    this.#settle(item.delivery, settlement, outcome);
  }

  /**
   * Settles the messages of one execution: by their outcomes, or, when the execution failed as
   * a whole, re-queued as a failed attempt each (dead-lettered at the poison cap).
   */
  execution(
    items: readonly HeldItem[],
    outcomes: readonly TaskOutcome[] | undefined,
    failure: Error | undefined,
  ): void {
    const now = this.#options.now();
    items.forEach((item, index) => {
      if (failure || !outcomes) {
        const error = failure ?? new Error('no outcome');
        const decided = settlementForInvokeFailure(
          item.message,
          error,
          this.#options.poisonCap,
          now,
        );
        const detail = `${error.name}: ${error.message}`;
        const { failures, dead } = decided;
        this.#settle(item.delivery, decided.settlement, {
          kind: 'invoke-failed',
          detail,
          failures,
          dead,
        });
        return;
      }
      this.outcome(item, outcomes[index] as TaskOutcome);
    });
  }

  /** Puts messages back unrun, due now, nothing counted. */
  release(items: readonly HeldItem[]): void {
    const now = this.#options.now();
    for (const { delivery, message } of items) {
      const outcome = { kind: 'released', detail: 'not started before the deadline' } as const;
      this.#settle(delivery, settlementForRelease(message, now), outcome);
    }
  }

  #settle(delivery: Delivery, settlement: Settlement, outcome: DispatchOutcome): void {
    this.#queue.push({
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
}

function eventsOf({ delivery, outcome }: WorkerEvent) {
  return delivery.result.ok ? outcomeEvents(delivery.result.message, outcome) : [];
}

function ignoresResult(registry: Registry, task: string): boolean {
  const found = registry.lookup(task);
  return found.kind === 'task' && found.task.options.ignoreResult;
}
