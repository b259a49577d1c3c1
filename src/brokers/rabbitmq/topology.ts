/**
 * RabbitMQ topology: work queues declared exactly as Celery declares them, their dead-letter
 * queues, and kombu ≥ 5.5's "native delayed delivery" levels, which delay messages without any
 * broker plugin (Amazon MQ has none).
 *
 * Delays, as kombu does them: 28 levels `celery_delayed_27` … `celery_delayed_0`, each a topic
 * exchange and a queue with `x-message-ttl` = 2^N s that dead-letters into level N-1 (level 0
 * into `celery_delayed_delivery`). The routing key is the delay in seconds as 28 binary digits,
 * dot-separated, then the work queue's routing key: a message waits only in the levels whose bit
 * is set. Work queues are bound to `celery_delayed_delivery` with `#.<queue>`. Same names and
 * arguments as Celery ≥ 5.5, so its workers and we share delayed messages.
 */

import type { QueueDeclaration } from '../../core/queue.js';
import { queueArguments } from '../../core/queue.js';
import { AMQP_REPLY, amqpReplyOf } from './amqp-failure.js';

/** Bits of the delay: up to 2^28 − 1 seconds (about 8.5 years). */
export const DELAY_BITS = 28;
/** Longest delay, in seconds. */
export const MAX_DELAY_SECONDS = 2 ** DELAY_BITS - 1;

/** The slice of an amqplib channel that declaring topology uses. */
export interface TopologyChannel {
  assertExchange(
    exchange: string,
    type: string,
    options?: { durable?: boolean; autoDelete?: boolean },
  ): Promise<unknown>;
  assertQueue(
    queue: string,
    options?: { durable?: boolean; autoDelete?: boolean; arguments?: Record<string, unknown> },
  ): Promise<unknown>;
  bindQueue(queue: string, source: string, pattern: string): Promise<unknown>;
  bindExchange(destination: string, source: string, pattern: string): Promise<unknown>;
}

/** Names of the delay topology for an optional prefix (Celery's naming, prefix included). */
export class DelayTopology {
  readonly #prefix: string;

  constructor(prefix = '') {
    this.#prefix = prefix;
  }

  /** Exchange and queue name of level `level`. */
  level(level: number): string {
    return this.#prefix ? `${this.#prefix}_celery_delayed_${level}` : `celery_delayed_${level}`;
  }

  /** The exchange delayed messages finally reach, bound to every work queue. */
  get delivery(): string {
    return this.#prefix ? `${this.#prefix}_celery_delayed_delivery` : 'celery_delayed_delivery';
  }

  /** Where a delayed message is published: the top level. */
  get entry(): string {
    return this.level(DELAY_BITS - 1);
  }
}

/**
 * The routing key of a delayed message: `seconds` as 28 binary digits, dot-separated, then the
 * work queue's routing key (kombu's `calculate_routing_key`).
 *
 * @throws RangeError for a delay below 1 s or above {@link MAX_DELAY_SECONDS}
 */
export function delayRoutingKey(seconds: number, routingKey: string): string {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_DELAY_SECONDS) {
    throw new RangeError(`delay must be 1..${MAX_DELAY_SECONDS} whole seconds, got ${seconds}`);
  }
  return `${seconds.toString(2).padStart(DELAY_BITS, '0').split('').join('.')}.${routingKey}`;
}

/**
 * Whole seconds to wait for a message due at `dueAt`: rounded up, so a message is never early
 * (kombu truncates and may deliver up to 1 s early; the eta header then holds a Celery worker).
 */
export function delaySeconds(dueAt: Date, now: number): number {
  return Math.min(MAX_DELAY_SECONDS, Math.ceil((dueAt.getTime() - now) / 1000));
}

/**
 * Declares the 28 delay levels and the delivery exchange, with kombu's exact arguments and
 * bindings (`declare_native_delayed_delivery_exchanges_and_queues`).
 */
export async function declareDelayTopology(
  channel: TopologyChannel,
  names: DelayTopology,
  queueType: 'quorum' | 'classic',
): Promise<void> {
  let pattern = '1.#';
  for (let level = DELAY_BITS - 1; level >= 0; level--) {
    const name = names.level(level);
    await channel.assertExchange(name, 'topic', { durable: true });
    await channel.assertQueue(name, {
      durable: true,
      arguments: {
        'x-queue-type': queueType,
        'x-overflow': 'reject-publish',
        'x-message-ttl': 2 ** level * 1000,
        'x-dead-letter-exchange': level > 0 ? names.level(level - 1) : names.delivery,
        ...(queueType === 'quorum' ? { 'x-dead-letter-strategy': 'at-least-once' } : {}),
      },
    });
    await channel.bindQueue(name, name, pattern);
    pattern = `*.${pattern}`;
  }
  // A 0 bit skips the level: exchange N forwards straight to exchange N-1.
  pattern = '0.#';
  for (let level = DELAY_BITS - 1; level > 0; level--) {
    await channel.bindExchange(names.level(level - 1), names.level(level), pattern);
    pattern = `*.${pattern}`;
  }
  await channel.assertExchange(names.delivery, 'topic', { durable: true });
  await channel.bindExchange(names.delivery, names.level(0), pattern);
}

/**
 * The key binding a work queue to the delivery exchange: exactly 28 delay bits, then the queue
 * name. kombu binds `#.<queue>`, but `#` matches any number of words, so a queue `save_event`
 * would also get the delayed messages of `events.save_event` (and run them twice). Celery ≥ 5.5
 * producers write 28 bits too, so both sides' delayed messages still arrive.
 */
export function deliveryBindingKey(queue: string): string {
  return `${'*.'.repeat(DELAY_BITS)}${queue}`;
}

/**
 * Declares a work queue the way Celery does (durable unless said otherwise, the declared
 * arguments only, a durable direct exchange named like the queue bound by the queue name), its
 * dead-letter queue, and its binding to the delay delivery exchange ({@link deliveryBindingKey}).
 */
export async function declareWorkQueue(
  channel: TopologyChannel,
  queue: QueueDeclaration,
  names: DelayTopology,
): Promise<void> {
  await channel.assertQueue(queue.name, {
    durable: queue.durable,
    autoDelete: queue.autoDelete,
    arguments: queueArguments(queue),
  });
  // kombu's Exchange is durable whatever the queue's durability (Sentry's non-durable queues
  // included): declaring it non-durable would be a 406 against the Python side's exchange.
  await channel.assertExchange(queue.name, 'direct', { durable: true });
  await channel.bindQueue(queue.name, queue.name, queue.name);
  await channel.bindQueue(queue.name, names.delivery, deliveryBindingKey(queue.name));
  await channel.assertQueue(queue.deadLetterQueue, { durable: true });
}

/**
 * Turns RabbitMQ's 406 on a declaration into an explanation: the object exists with other
 * arguments, and which side must change.
 */
export function explainDeclareError(error: unknown, what: string): string | null {
  const reply = amqpReplyOf(error);
  if (reply?.code !== AMQP_REPLY.PRECONDITION_FAILED) return null;
  const reason = reply.text?.replace(/^PRECONDITION_FAILED - /, '') ?? 'reply 406';
  return (
    `${what} already exists on the broker with other settings (${reason}). ` +
    'RabbitMQ refuses a second declaration that differs, and the refusal breaks whichever side declares second: ' +
    'declare the queue in the registry exactly as the Python side does (durable, maxPriority, arguments such as x-queue-type), or delete it if nothing uses it.'
  );
}
