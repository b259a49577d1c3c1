/**
 * Settlements on their way to the broker: each message is settled as soon as its own outcome is
 * known, and those that become known together (in one turn of the event loop, or while the
 * previous settle is still in flight) go in one call, so one broker round trip settles many.
 *
 * Settlements that carry effects (a workflow's continuations) have them performed first, all of
 * the call's together ({@link performEffects}): published before settled, never after.
 */
import type { Broker, SettleItem } from '../brokers/broker.js';
import type { Effects } from '../core/settlement.js';
import { type EffectsBackend, performEffects } from './effects.js';

/** One message to settle, and what to call once the broker has it (or refused it). */
export interface SettleEntry<T> {
  readonly item: SettleItem;
  readonly tag: T;
}

/** Called once per entry: `error` is set when the broker refused or could not be reached. */
export type SettledCallback<T> = (entries: readonly SettleEntry<T>[], error?: Error) => void;

/**
 * How an entry is settled instead when its effects failed (the broker or backend is in
 * trouble): typically re-queued as a failed attempt. `null` leaves it held, for the broker to
 * restore.
 */
export type EffectsFallback<T> = (entry: SettleEntry<T>, error: Error) => SettleEntry<T> | null;

/** Options of a {@link SettleQueue}. */
export interface SettleQueueOptions<T> {
  /** @defaultValue leave the entries held (reported with the error) */
  readonly onEffectsFailed?: EffectsFallback<T>;
  /** Result backend for chord sizes. */
  readonly backend?: EffectsBackend | null | undefined;
}

/** Coalesces settlements into as few broker calls as their timing allows, one call at a time. */
export class SettleQueue<T> {
  readonly #broker: Pick<Broker, 'settle' | 'publish'>;
  readonly #onSettled: SettledCallback<T>;
  readonly #options: SettleQueueOptions<T>;
  #pending: SettleEntry<T>[] = [];
  #busy = false;

  constructor(
    broker: Pick<Broker, 'settle' | 'publish'>,
    onSettled: SettledCallback<T>,
    options: SettleQueueOptions<T> = {},
  ) {
    this.#broker = broker;
    this.#onSettled = onSettled;
    this.#options = options;
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
      const taken = this.#pending;
      this.#pending = [];
      const { entries, held } = await this.#effects(taken);
      if (held.error && held.entries.length > 0) this.#onSettled(held.entries, held.error);
      if (entries.length === 0) continue;
      let failure: Error | undefined;
      try {
        await this.#broker.settle(entries.map((entry) => entry.item));
      } catch (error) {
        failure = toError(error);
      }
      this.#onSettled(entries, failure);
    }
    this.#busy = false;
  }

  /** Performs the effects of `taken`; on failure, swaps their settlements for the fallback. */
  async #effects(taken: SettleEntry<T>[]): Promise<{
    entries: SettleEntry<T>[];
    held: { entries: SettleEntry<T>[]; error?: Error };
  }> {
    const effects = taken
      .map((entry) => entry.item.settlement.effects)
      .filter((effect): effect is Effects => effect !== undefined);
    if (effects.length === 0) return { entries: taken, held: { entries: [] } };
    try {
      await performEffects(effects, { broker: this.#broker, backend: this.#options.backend });
      return { entries: taken, held: { entries: [] } };
    } catch (thrown) {
      const error = toError(thrown);
      const entries: SettleEntry<T>[] = [];
      const held: SettleEntry<T>[] = [];
      for (const entry of taken) {
        if (!entry.item.settlement.effects) {
          entries.push(entry);
          continue;
        }
        const instead = this.#options.onEffectsFailed?.(entry, error) ?? null;
        if (instead) entries.push(instead);
        else held.push(entry);
      }
      return { entries, held: { entries: held, error } };
    }
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
