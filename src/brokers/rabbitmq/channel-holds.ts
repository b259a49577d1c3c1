/**
 * Which deliveries of one consumer channel are handed out and not settled yet, kept so that a
 * settled batch can be acknowledged with one `basic.ack` (multiple) where that is safe.
 *
 * An ack with `multiple` set acknowledges every unacknowledged delivery of the channel up to its
 * tag, including deliveries another batch still holds (the worker asks for the next batch while
 * the current one settles; a batch whose retries are being confirmed is still held). So one is
 * used only up to the smallest tag still held; the rest of the batch is acked one by one.
 */

/** How to acknowledge released deliveries: `upTo` with multiple set, then `each` one by one. */
export interface AckPlan<T> {
  /** The released delivery with the largest tag below every delivery still held, if any. */
  readonly upTo: T | undefined;
  /** Released deliveries above a delivery still held: each needs an ack of its own. */
  readonly each: readonly T[];
}

/**
 * Consumed entries at the front, at least this many and half the array, are cut off: the array
 * stays short without a splice per settle.
 */
const COMPACT_AFTER = 1024;

/**
 * The deliveries held on one channel, in delivery-tag order. Holding, releasing and planning are
 * amortised O(1) per delivery: a released delivery leaves the front of the queue once everything
 * before it is released too.
 *
 * @typeParam T - a delivery (amqplib's message); `tagOf` reads its delivery tag
 */
export class ChannelHolds<T> {
  readonly #tagOf: (item: T) => number;
  /** Held deliveries in tag order; entries before `#head` are gone. */
  #queue: T[] = [];
  #head = 0;
  /** Released deliveries still in `#queue` behind one that is held. */
  readonly #released = new Set<T>();

  constructor(tagOf: (item: T) => number) {
    this.#tagOf = tagOf;
  }

  /** Deliveries held and not released. */
  get size(): number {
    return this.#queue.length - this.#head - this.#released.size;
  }

  /**
   * Records a delivery handed out. Deliveries must come in the order the channel delivered
   * them: RabbitMQ numbers a channel's deliveries in increasing order.
   */
  hold(item: T): void {
    this.#queue.push(item);
  }

  /**
   * Forgets `items` (held, each once) and says how to acknowledge them without acknowledging
   * any delivery still held.
   */
  release(items: readonly T[]): AckPlan<T> {
    for (const item of items) this.#released.add(item);
    const queue = this.#queue;
    let head = this.#head;
    while (head < queue.length && this.#released.delete(queue[head] as T)) head++;
    if (head >= COMPACT_AFTER && head * 2 >= queue.length) {
      this.#queue = queue.slice(head);
      head = 0;
    }
    this.#head = head;
    const first = this.#queue[head];
    const floor = first === undefined ? Number.POSITIVE_INFINITY : this.#tagOf(first);
    let upTo: T | undefined;
    let upToTag = -1;
    const each: T[] = [];
    for (const item of items) {
      const tag = this.#tagOf(item);
      if (tag > floor) each.push(item);
      else if (tag > upToTag) {
        upTo = item;
        upToTag = tag;
      }
    }
    return { upTo, each };
  }
}
