/**
 * The Broker contract: what the Lambda layer, the poller and the CLI need from a message broker,
 * in task and queue terms. Redis and RabbitMQ implement it; no ioredis or amqplib type appears
 * here.
 *
 * @remarks
 * - Each adapter owns its connection: created lazily on first use, reused across warm Lambda
 *   invocations, closed only by {@link Broker.close}.
 * - A received message is held until it is settled, and settled only once its outcome is known.
 *   Nothing is acknowledged on receipt.
 * - Delays live in the broker (a Redis sorted set, RabbitMQ TTL queues), never in process memory.
 * - Workflows are run by the worker, not the broker: after a task, its `link` callbacks (result
 *   first), its next `chain` step and, on final failure, its `link_error` errbacks (`(task_id,)`)
 *   are published through {@link Broker.publish} before its message is settled, as Celery 5
 *   does. A message whose workflow cannot be honoured (an entry that is not a signature,
 *   a `subtask_type` we do not expand such as `chunks`/`xmap`, a chord part or a chord
 *   continuation without a result backend) is dead-lettered `unsupported-workflow` before it
 *   runs, never half-run.
 * - Left out: result backends (not part of a broker), fan-out.
 */
import type { DeadLetterReason } from '../core/dead-letter.js';
import type { TaskMessage } from '../core/message.js';
import type { QueueDeclaration } from '../core/queue.js';
import type { Settlement } from '../core/settlement.js';
import type { DecodeResult, RawDelivery } from '../core/wire.js';

/** Where a broker reports what needs a person's attention. @defaultValue `console` */
export interface BrokerLogger {
  warn(message: string): void;
}

/** One received message, held by the consumer until settled. */
export interface Delivery {
  /** Queue it was received from. */
  readonly queue: string;
  /** The decoded message, or why it could not be decoded. */
  readonly result: DecodeResult;
  /** The broker delivered it before (a consumer died or shut down holding it). */
  readonly redelivered: boolean;
  /**
   * Earlier deliveries the broker counted, where it counts them (RabbitMQ quorum queues'
   * `x-delivery-count`); absent elsewhere.
   */
  readonly deliveryCount?: number;
}

export type { Settlement } from '../core/settlement.js';

/** A delivery and what to do with it. */
export interface SettleItem {
  readonly delivery: Delivery;
  readonly settlement: Settlement;
}

/** What every broker adapter takes besides its configuration. */
export interface BrokerOptionsBase {
  /** Declared queues (from the registry): their topology and dead-letter names. */
  readonly queues?: readonly QueueDeclaration[];
  /** Where warnings go. @defaultValue console */
  readonly logger?: BrokerLogger;
  /** Clock, for tests. @defaultValue Date.now */
  readonly now?: () => number;
}

/** Which dead letters an operation applies to. */
export interface DeadLetterFilter {
  /** Only entries of this task. */
  readonly task?: string;
  /** At most this many. @defaultValue all */
  readonly limit?: number;
}

/** A message nobody holds, to dead-letter (an event source delivered it). */
export interface DeadLetterItem {
  readonly queue: string;
  /** The message as delivered (it may not be decodable). */
  readonly raw: RawDelivery;
  readonly reason: DeadLetterReason;
}

/** Options of {@link Broker.receive}. */
export interface ReceiveOptions {
  /** Most messages to return. */
  readonly max: number;
  /** How long to wait for a first message when the queue is empty. 0 returns at once. */
  readonly waitMs: number;
  /** Stops waiting early. */
  readonly signal?: AbortSignal;
}

/** Counts for one queue, as `inspect` shows them. */
export interface QueueStats {
  readonly queue: string;
  /** Waiting to be received. */
  readonly ready: number;
  /** Received and not settled yet (held by some consumer). */
  readonly unacked: number;
  /** Parked in delay storage until due. */
  readonly delayed: number;
  /** In the dead-letter store. */
  readonly deadLettered: number;
}

/** One entry of a dead-letter store. */
export interface DeadLetterEntry extends DeadLetterReason {
  /** Queue the message was taken from. */
  readonly queue: string;
  /** When it was dead-lettered, ISO 8601. */
  readonly at: string;
  /** The message as it was on the wire (a kombu envelope on Redis, the body on AMQP). */
  readonly raw: string;
}

/** A message broker, in task and queue terms. */
export interface Broker {
  /** Which adapter this is. */
  readonly kind: 'redis' | 'rabbitmq';
  /**
   * Publishes messages to their queues (`routingKey`), in one round trip where the broker
   * allows. Resolves once the broker has them.
   *
   * @throws BrokerError when the broker is unreachable or refuses
   */
  publish(messages: readonly TaskMessage[]): Promise<void>;
  /**
   * Takes up to `max` messages from `queue`, recording each as held (crash-safe: a consumer that
   * dies holding them does not lose them). Messages that cannot even be held (a Redis envelope
   * that is not JSON) are dead-lettered on the spot and not returned.
   */
  receive(queue: string, options: ReceiveOptions): Promise<Delivery[]>;
  /** Settles held messages. Each delivery is settled at most once. */
  settle(items: readonly SettleItem[]): Promise<void>;
  /**
   * Dead-letters messages this consumer does not hold: Amazon MQ's event source hands a batch to
   * a function and acknowledges it when the function returns, so the dead ones must be stored
   * before that.
   */
  deadLetter(items: readonly DeadLetterItem[]): Promise<void>;
  /** Counts of a queue. */
  stats(queue: string): Promise<QueueStats>;
  /**
   * Up to `limit` entries of a queue's dead-letter store, without removing them (Redis: newest
   * first; RabbitMQ: oldest first, as the queue holds them).
   */
  deadLetters(queue: string, limit: number): Promise<DeadLetterEntry[]>;
  /**
   * Re-publishes dead letters of `queue` to it, oldest first: same id, retries reset to 0, no eta
   * or expiry (see `replayMessage`). Entries that cannot be decoded stay where they are.
   *
   * @returns how many were replayed
   */
  replayDeadLetters(queue: string, filter?: DeadLetterFilter): Promise<number>;
  /**
   * Deletes dead letters of `queue` (all, or those of one task).
   *
   * @returns how many were deleted
   */
  purgeDeadLetters(queue: string, filter?: DeadLetterFilter): Promise<number>;
  /** Closes the connections. The broker cannot be used afterwards. */
  close(): Promise<void>;
  /**
   * Moves delayed messages that are due back into `queue`. Brokers whose delays come back by
   * themselves (RabbitMQ dead-lettering) leave it out.
   *
   * @returns how many were moved
   */
  promoteDue?(queue: string, limit?: number): Promise<number>;
  /**
   * Puts back messages held longer than the visibility timeout by consumers that died.
   * Brokers that do this themselves (RabbitMQ, on connection loss) leave it out.
   *
   * @returns how many were restored
   */
  restoreStale?(): Promise<number>;
}
