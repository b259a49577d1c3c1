/**
 * How many executions a flow runs at once while its executor throttles: halved (from what runs)
 * on a throttle, widened by one per execution that was not throttled, never above the slots;
 * and a pause after each throttle, doubling with throttles in a row. Additive increase,
 * multiplicative decrease, as TCP does, so a Lambda account at its concurrency limit is probed
 * again gently rather than hammered.
 */

/** Longest pause after throttles in a row, ms. */
const MAX_THROTTLE_PAUSE_MS = 5_000;

/** The flow's adaptive limit on executions at once. */
export class ConcurrencyLimit {
  readonly #slots: number;
  #limit: number;
  #throttles = 0;
  #pausedUntil = 0;

  constructor(slots: number) {
    this.#slots = slots;
    this.#limit = slots;
  }

  /** Executions allowed at once now. */
  get limit(): number {
    return this.#limit;
  }

  /** No execution starts before this instant (ms). */
  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /**
   * An execution was refused as throttled while `running` others still run.
   *
   * @returns the pause before the next start, ms
   */
  throttled(running: number, now: number): number {
    this.#throttles++;
    this.#limit = Math.max(1, Math.min(this.#limit, Math.ceil((running + 1) / 2)));
    const pause = Math.min(MAX_THROTTLE_PAUSE_MS, 100 * 2 ** (this.#throttles - 1));
    this.#pausedUntil = Math.max(this.#pausedUntil, now + pause);
    return pause;
  }

  /** An execution ended without a throttle (successful or not). */
  passed(): void {
    this.#throttles = 0;
    this.#limit = Math.min(this.#slots, this.#limit + 1);
  }
}
