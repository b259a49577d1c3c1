/**
 * Redis key names, kombu's and ours. kombu's (`<queue>` lists, `_kombu.binding.*`, `unacked*`) are
 * shared with Python workers on the same database; ours live under `_sc.` and are never touched
 * by kombu. An optional prefix is kombu's `global_keyprefix`: set both sides to the same value.
 */
import { KOMBU_SEPARATOR, redisBindingMember, redisQueueKeys } from '../../core/redis-codec.js';

/** Key names for one database and prefix. */
export class RedisKeys {
  readonly #prefix: string;

  constructor(prefix = '') {
    this.#prefix = prefix;
  }

  /** kombu's hash of held messages: `delivery_tag` → `[envelope, exchange, routing_key]`. */
  get unacked(): string {
    return `${this.#prefix}unacked`;
  }

  /** kombu's zset of held messages: `delivery_tag` scored by delivery time (unix seconds). */
  get unackedIndex(): string {
    return `${this.#prefix}unacked_index`;
  }

  /** kombu's restore mutex: whoever holds it restores stale `unacked` entries. */
  get unackedMutex(): string {
    return `${this.#prefix}unacked_mutex`;
  }

  /** The four lists of a queue, in the order they are drained (priority step 0 first). */
  queueLists(queue: string): string[] {
    return redisQueueKeys(queue).map((key) => `${this.#prefix}${key}`);
  }

  /** kombu's binding set of a queue's exchange, and the member that routes it to the queue. */
  binding(queue: string): { key: string; member: string } {
    return { key: `${this.#prefix}_kombu.binding.${queue}`, member: redisBindingMember(queue) };
  }

  /** Our delay storage for a queue: envelopes scored by due time (unix ms). */
  delayed(queue: string): string {
    return `${this.#prefix}_sc.delayed${KOMBU_SEPARATOR}${queue}`;
  }

  /** A dead-letter list (newest first). */
  deadLetter(deadLetterQueue: string): string {
    return `${this.#prefix}_sc.dead${KOMBU_SEPARATOR}${deadLetterQueue}`;
  }

  /** A key as it is in Redis: with the prefix. */
  prefixed(key: string): string {
    return `${this.#prefix}${key}`;
  }
}
