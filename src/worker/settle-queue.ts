/**
 * Settlements on their way to the broker: each message is settled as soon as its own outcome is
 * known, and those that become known together (in one turn of the event loop, or while the
 * previous settle is still in flight) go in one call, so one broker round trip settles many.
 */
import type { Broker, SettleItem } from '../brokers/broker.js';

/** One message to settle, and what to call once the broker has it (or refused it). */
export interface SettleEntry<T> {
  readonly item: SettleItem;
  readonly tag: T;
}

/** Called once per entry: `error` is set when the broker refused or could not be reached. */
export type SettledCallback<T> = (entries: readonly SettleEntry<T>[], error?: Error) => void;

/** Coalesces settlements into as few broker calls as their timing allows, one call at a time. */
export class SettleQueue<T> {
  readonly #broker: Pick<Broker, 'settle'>;
  readonly #onSettled: SettledCallback<T>;
  #pending: SettleEntry<T>[] = [];
  #busy = false;

  constructor(broker: Pick<Broker, 'settle'>, onSettled: SettledCallback<T>) {
    this.#broker = broker;
    this.#onSettled = onSettled;
  }

  /** Queues one settlement; it is sent at the end of this turn, or after the call in flight. */
  push(entry: SettleEntry<T>): void {
    this.#pending.push(entry);
    if (this.#busy) return;
    this.#busy = true;
    // setImmediate, not a microtask: outcomes of tasks that finish in this same turn (a batch of
    // quick tasks, one invoke's answer) join the same call.
    setImmediate(() => void this.#drain());
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0) {
      const entries = this.#pending;
      this.#pending = [];
      let failure: Error | undefined;
      try {
        await this.#broker.settle(entries.map((entry) => entry.item));
      } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
      }
      this.#onSettled(entries, failure);
    }
    this.#busy = false;
  }
}
