/**
 * The RabbitMQ broker (also Amazon MQ for RabbitMQ), wire-compatible with Celery over py-amqp.
 *
 * Consumes with manual acks and a prefetch limit; settles each message only once its outcome is
 * known; delays with kombu's plugin-free TTL levels (no consumer holds a delayed message, so
 * `consumer_timeout` never bites); dead-letters into `<queue>.dlq` with the reason in headers.
 * A lost connection or channel is re-opened on the next operation.
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, GetMessage } from 'amqplib';
import type { RabbitMqBrokerConfig } from '../../config/broker-config.js';
import { connectWithSecret } from '../../config/broker-secret.js';
import {
  decodeAmqpMessage,
  encodeAmqpMessage,
  typeAmqpHeaderValue,
  untypeAmqpValue,
} from '../../core/amqp-codec.js';
import { type DeadLetterReason, deadLetterReason } from '../../core/dead-letter.js';
import { BrokerError } from '../../core/errors.js';
import type { TaskMessage } from '../../core/message.js';
import type { QueueDeclaration } from '../../core/queue.js';
import { replayMessage } from '../../core/replay.js';
import type {
  Broker,
  BrokerLogger,
  BrokerOptionsBase,
  DeadLetterEntry,
  DeadLetterFilter,
  DeadLetterItem,
  Delivery,
  QueueStats,
  ReceiveOptions,
  SettleItem,
} from '../broker.js';
import { type AmqpConnect, amqplibConnect } from './amqp-connect.js';
import { AMQP_REPLY, explainAmqpFailure, hasAmqpReply, isAmqpAuthFailure } from './amqp-failure.js';
import { ChannelHolds } from './channel-holds.js';
import { deadLetterHeaders, readDeadLetterHeaders } from './dead-letter-headers.js';
import {
  DELAY_BITS,
  DelayTopology,
  declareDelayTopology,
  declareWorkQueue,
  delayRoutingKey,
  delaySeconds,
  explainDeclareError,
} from './topology.js';

export type { AmqpConnect } from './amqp-connect.js';

/** Options of {@link RabbitMqBroker}. Undeclared queues are declared as Celery does. */
export interface RabbitMqBrokerOptions extends BrokerOptionsBase {
  readonly config: RabbitMqBrokerConfig;
  /** Opens the connection; tests pass one that wraps amqplib's to watch it. @defaultValue amqplib's `connect` */
  readonly connect?: AmqpConnect;
}

interface Consumer {
  readonly channel: Channel;
  readonly buffer: ConsumeMessage[];
  readonly wake: Set<() => void>;
  /** Messages handed out and not settled yet. */
  readonly holds: ChannelHolds<ConsumeMessage>;
  open: boolean;
}

interface Held {
  readonly consumer: Consumer;
  readonly message: ConsumeMessage;
}

/** A RabbitMQ broker. Create it once per process and reuse it across invocations. */
export class RabbitMqBroker implements Broker {
  readonly kind = 'rabbitmq' as const;
  readonly #config: RabbitMqBrokerConfig;
  readonly #declarations: Map<string, QueueDeclaration>;
  readonly #logger: BrokerLogger;
  readonly #now: () => number;
  readonly #delays: DelayTopology;
  readonly #connect: AmqpConnect;
  readonly #held = new WeakMap<Delivery, Held>();
  readonly #consumers = new Map<string, Promise<Consumer>>();
  readonly #declared = new Map<string, Promise<void>>();
  #connection: Promise<ChannelModel> | undefined;
  #publisher: Promise<ConfirmChannel> | undefined;
  #delayTopology: Promise<void> | undefined;
  #closed = false;

  constructor(options: RabbitMqBrokerOptions) {
    this.#config = options.config;
    this.#declarations = new Map((options.queues ?? []).map((queue) => [queue.name, queue]));
    this.#logger = options.logger ?? console;
    this.#now = options.now ?? Date.now;
    this.#delays = new DelayTopology(options.config.delayPrefix);
    this.#connect = options.connect ?? amqplibConnect;
  }

  /** Names of the delay topology in use. */
  get delayTopology(): DelayTopology {
    return this.#delays;
  }

  /** The declaration used for `queue`: the registry's, else Celery's default. */
  declarationOf(queue: string): QueueDeclaration {
    return (
      this.#declarations.get(queue) ?? {
        name: queue,
        durable: true,
        autoDelete: false,
        arguments: {},
        deadLetterQueue: `${queue}.dlq`,
      }
    );
  }

  async publish(messages: readonly TaskMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await Promise.all(
      [...new Set(messages.map((message) => message.routingKey))].map((queue) =>
        this.#ensureQueue(queue),
      ),
    );
    const channel = await this.#publisherChannel();
    const now = this.#now();
    for (const message of messages) {
      await this.#send(channel, message, message.eta, now);
    }
    await this.#confirm(channel, `publish ${messages.length} message(s)`);
  }

  /** Publishes one message: straight to its queue, or through the delay levels if due later. */
  async #send(
    channel: ConfirmChannel,
    message: TaskMessage,
    dueAt: Date | null,
    now: number,
  ): Promise<void> {
    const queue = message.routingKey;
    const { content, options } = encodeAmqpMessage(message, new Date(now));
    const { expiration, ...rest } = options;
    const publishOptions = this.#config.setExpiration && expiration !== undefined ? options : rest;
    const seconds = dueAt ? delaySeconds(dueAt, now) : 0;
    const [exchange, routingKey] =
      seconds > 0 ? [this.#delays.entry, delayRoutingKey(seconds, queue)] : ['', queue];
    await this.#write(channel, exchange, routingKey, content, publishOptions);
  }

  async #write(
    channel: ConfirmChannel,
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Parameters<ConfirmChannel['publish']>[3],
  ): Promise<void> {
    if (!channel.publish(exchange, routingKey, content, options)) {
      // The socket buffer is full: wait for it to drain before writing more.
      await new Promise<void>((resolve) => channel.once('drain', resolve));
    }
  }

  async #confirm(channel: ConfirmChannel, action: string): Promise<void> {
    try {
      await channel.waitForConfirms();
    } catch (error) {
      throw this.#failure(action, error);
    }
  }

  async receive(queue: string, options: ReceiveOptions): Promise<Delivery[]> {
    await this.#ensureQueue(queue);
    const consumer = await this.#consumer(queue);
    if (consumer.buffer.length === 0 && options.waitMs > 0 && !options.signal?.aborted) {
      await waitForMessages(consumer, options.waitMs, options.signal);
    }
    const taken = consumer.buffer.splice(0, options.max);
    const deliveries = taken.map((message) => {
      consumer.holds.hold(message);
      const result = decodeAmqpMessage(message);
      const count = message.properties.headers?.['x-delivery-count'];
      const delivery: Delivery = {
        queue,
        result,
        redelivered: message.fields.redelivered || (result.ok && result.message.redelivered),
        ...(typeof count === 'number' ? { deliveryCount: count } : {}),
      };
      this.#held.set(delivery, { consumer, message });
      return delivery;
    });
    return this.#withoutPoison(queue, deliveries);
  }

  /**
   * A quorum queue with `x-delivery-limit` drops a message silently once it has been delivered
   * past the limit (RabbitMQ 3.x; no dead-letter exchange can be added without a 406 against the
   * Python side's declaration). A message at its last allowed delivery has already been handed
   * to consumers that died holding it that many times: it is dead-lettered as poison instead of
   * being run again, so it is kept with a reason rather than lost.
   */
  async #withoutPoison(queue: string, deliveries: Delivery[]): Promise<Delivery[]> {
    const limit = this.declarationOf(queue).arguments['x-delivery-limit'];
    if (typeof limit !== 'number') return deliveries;
    const poison = deliveries.filter((delivery) => (delivery.deliveryCount ?? 0) >= limit);
    if (poison.length === 0) return deliveries;
    await this.settle(
      poison.map((delivery) => ({
        delivery,
        settlement: {
          kind: 'dead-letter',
          reason: deadLetterReason(
            delivery.result.ok
              ? delivery.result.message
              : { task: delivery.result.task, id: delivery.result.id, retries: null },
            'poison',
            `delivered ${(delivery.deliveryCount ?? 0) + 1} times, the queue's x-delivery-limit is ${limit}: its consumers kept dying`,
          ),
        },
      })),
    );
    return deliveries.filter((delivery) => !poison.includes(delivery));
  }

  async settle(items: readonly SettleItem[]): Promise<void> {
    if (items.length === 0) return;
    const seen = new Set<Delivery>();
    const helds = items.map(({ delivery }) => {
      const held = this.#held.get(delivery);
      // A repeat within this call counts too: its tag would be acked twice, and RabbitMQ closes
      // a channel that acks an unknown tag.
      if (!held || seen.has(delivery))
        throw new Error(`delivery from ${delivery.queue} was already settled or is not ours`);
      seen.add(delivery);
      return held;
    });
    const republish = items.filter(({ settlement }) => settlement.kind !== 'done');
    if (republish.length > 0) {
      const channel = await this.#publisherChannel();
      const now = this.#now();
      for (const [index, { delivery, settlement }] of items.entries()) {
        const held = helds[index] as Held;
        if (settlement.kind === 'retry-later') {
          await this.#ensureQueue(delivery.queue);
          const routed = { ...settlement.message, exchange: '', routingKey: delivery.queue };
          await this.#send(channel, routed, settlement.dueAt, now);
        } else if (settlement.kind === 'dead-letter') {
          await this.#ensureQueue(delivery.queue);
          await this.#deadLetter(channel, delivery.queue, held.message, settlement.reason, now);
        }
      }
      // Only once the broker has the replacements is the original let go: a crash in between
      // redelivers the original (a duplicate), never loses it.
      await this.#confirm(channel, `settle ${items.length} message(s)`);
    }
    const released = new Map<Consumer, ConsumeMessage[]>();
    for (const [index, { delivery }] of items.entries()) {
      const held = helds[index] as Held;
      this.#held.delete(delivery);
      if (!held.consumer.open) {
        this.#logger.warn(
          `channel of ${delivery.queue} closed before settlement; RabbitMQ redelivers the message`,
        );
      }
      const messages = released.get(held.consumer);
      if (messages) messages.push(held.message);
      else released.set(held.consumer, [held.message]);
    }
    for (const [consumer, messages] of released) {
      const { upTo, each } = consumer.holds.release(messages);
      if (!consumer.open) continue;
      // One ack (multiple) for the batch where no other delivery held on the channel is below
      // it: a third of RabbitMQ's CPU per message or more, against an ack per message.
      if (upTo) consumer.channel.ack(upTo, true);
      for (const message of each) consumer.channel.ack(message);
    }
  }

  async #deadLetter(
    channel: ConfirmChannel,
    queue: string,
    message: ConsumeMessage,
    reason: DeadLetterReason,
    now: number,
  ): Promise<void> {
    const { properties } = message;
    const headers = {
      ...(untypeAmqpValue(properties.headers ?? {}) as Record<string, unknown>),
      ...deadLetterHeaders(reason, queue, new Date(now)),
    };
    await this.#write(channel, '', this.declarationOf(queue).deadLetterQueue, message.content, {
      headers: typeAmqpHeaderValue(headers) as Record<string, unknown>,
      contentType: properties.contentType,
      contentEncoding: properties.contentEncoding,
      correlationId: properties.correlationId,
      priority: properties.priority,
      deliveryMode: 2,
    });
  }

  async deadLetter(items: readonly DeadLetterItem[]): Promise<void> {
    if (items.length === 0) return;
    await Promise.all(
      [...new Set(items.map((item) => item.queue))].map((queue) => this.#ensureQueue(queue)),
    );
    const channel = await this.#publisherChannel();
    const now = this.#now();
    for (const { queue, raw, reason } of items) {
      const original = untypeAmqpValue(raw.headers ?? {});
      const headers = {
        ...(typeof original === 'object' && original !== null ? original : {}),
        ...deadLetterHeaders(reason, queue, new Date(now)),
      };
      await this.#write(
        channel,
        '',
        this.declarationOf(queue).deadLetterQueue,
        Buffer.from(raw.body, 'utf8'),
        {
          headers: typeAmqpHeaderValue(headers) as Record<string, unknown>,
          ...(typeof raw.contentType === 'string' ? { contentType: raw.contentType } : {}),
          ...(typeof raw.contentEncoding === 'string'
            ? { contentEncoding: raw.contentEncoding }
            : {}),
          ...(typeof raw.priority === 'number' ? { priority: raw.priority } : {}),
          deliveryMode: 2,
        },
      );
    }
    await this.#confirm(channel, `dead-letter ${items.length} message(s)`);
  }

  async stats(queue: string): Promise<QueueStats> {
    const ready = await this.#messageCount(queue);
    const dead = await this.#messageCount(this.declarationOf(queue).deadLetterQueue);
    let delayed = 0;
    for (let level = 0; level < DELAY_BITS; level++) {
      delayed += await this.#messageCount(this.#delays.level(level));
    }
    const consumer = this.#consumers.has(queue) ? await this.#consumers.get(queue) : undefined;
    return {
      queue,
      ready,
      // AMQP does not report other consumers' unacked counts; this process's holds are shown.
      unacked: consumer ? consumer.holds.size + consumer.buffer.length : 0,
      // The delay levels are shared by every queue: this is the total waiting in them.
      delayed,
      deadLettered: dead,
    };
  }

  /** Messages ready in `queue`; 0 for a queue nobody declared yet (inspecting must not declare). */
  async #messageCount(queue: string): Promise<number> {
    return this.#withChannel(`inspect ${queue}`, async (channel) => {
      try {
        return (await channel.checkQueue(queue)).messageCount;
      } catch (error) {
        if (hasAmqpReply(error, AMQP_REPLY.NOT_FOUND)) return 0;
        throw error;
      }
    });
  }

  async deadLetters(queue: string, limit: number): Promise<DeadLetterEntry[]> {
    return this.#withChannel(`read dead letters of ${queue}`, async (channel) => {
      const entries: DeadLetterEntry[] = [];
      const dlq = this.declarationOf(queue).deadLetterQueue;
      while (entries.length < limit) {
        const message = await channel.get(dlq, { noAck: false });
        if (!message) break;
        entries.push(
          readDeadLetterHeaders(message.properties.headers ?? {}, queue, message.content),
        );
      }
      // Closing the channel without acking puts every peeked message back.
      return entries;
    });
  }

  async replayDeadLetters(queue: string, filter: DeadLetterFilter = {}): Promise<number> {
    await this.#ensureQueue(queue);
    const publisher = await this.#publisherChannel();
    return this.#takeDeadLetters(queue, filter, async (message) => {
      const decoded = decodeAmqpMessage({
        content: message.content,
        fields: { exchange: '', routingKey: queue, redelivered: false },
        properties: {
          ...message.properties,
          headers: withoutDeadLetterHeaders(message.properties.headers),
        },
      });
      if (!decoded.ok) return false;
      const replay = replayMessage({ ...decoded.message, exchange: '', routingKey: queue });
      await this.#send(publisher, replay, null, this.#now());
      // Acked only once the broker confirmed the replay: a crash in between keeps the dead letter.
      await this.#confirm(publisher, `replay dead letters of ${queue}`);
      return true;
    });
  }

  async purgeDeadLetters(queue: string, filter: DeadLetterFilter = {}): Promise<number> {
    if (filter.task === undefined && filter.limit === undefined) {
      const dlq = this.declarationOf(queue).deadLetterQueue;
      if ((await this.#messageCount(dlq)) === 0) return 0;
      return this.#withChannel(
        `purge dead letters of ${queue}`,
        async (channel) => (await channel.purgeQueue(dlq)).messageCount,
      );
    }
    return this.#takeDeadLetters(queue, filter, async () => true);
  }

  /**
   * Walks `<queue>.dlq` oldest first and acks (removes) each entry that matches `filter` and that
   * `take` accepts; the others go back when the channel closes.
   */
  async #takeDeadLetters(
    queue: string,
    filter: DeadLetterFilter,
    take: (message: GetMessage) => Promise<boolean>,
  ): Promise<number> {
    const dlq = this.declarationOf(queue).deadLetterQueue;
    if ((await this.#messageCount(dlq)) === 0) return 0;
    return this.#withChannel(`dead letters of ${queue}`, async (channel) => {
      let taken = 0;
      while (filter.limit === undefined || taken < filter.limit) {
        const message = await channel.get(dlq, { noAck: false });
        if (!message) break;
        const entry = readDeadLetterHeaders(
          message.properties.headers ?? {},
          queue,
          message.content,
        );
        if (filter.task !== undefined && entry.task !== filter.task) continue;
        if (!(await take(message))) continue;
        channel.ack(message);
        taken++;
      }
      return taken;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const connection = this.#connection;
    const consumers = [...this.#consumers.values()];
    // Acks are not confirmed, and amqplib interleaves channels: a connection.close sent at once
    // can overtake the last acks, and RabbitMQ redelivers what was settled. A channel's own
    // close follows its acks, and its close-ok says RabbitMQ has read them.
    await Promise.all(
      consumers.map((consumer) =>
        consumer
          .then(
            (open) => (open.open ? open.channel.close() : undefined),
            () => undefined,
          )
          .catch(() => {
            // Closed by the server or the network meanwhile: RabbitMQ redelivers what it holds.
          }),
      ),
    );
    this.#reset();
    if (connection) {
      const model = await connection.catch(() => undefined);
      await model?.close().catch(() => {
        // Already closed by the server or the network: nothing left to close.
      });
    }
  }

  /** Declares the delay levels once, then the queue (and its dead-letter queue) once. */
  #ensureQueue(queue: string): Promise<void> {
    let declared = this.#declared.get(queue);
    if (!declared) {
      declared = (async () => {
        this.#delayTopology ??= this.#withChannel('declare the delay topology', (channel) =>
          declareDelayTopology(channel, this.#delays, this.#config.delayQueueType),
        ).catch((error: unknown) => {
          this.#delayTopology = undefined;
          throw error;
        });
        await this.#delayTopology;
        await this.#withChannel(`declare queue ${queue}`, (channel) =>
          declareWorkQueue(channel, this.declarationOf(queue), this.#delays),
        );
      })();
      declared.catch(() => this.#declared.delete(queue));
      this.#declared.set(queue, declared);
    }
    return declared;
  }

  #consumer(queue: string): Promise<Consumer> {
    let consumer = this.#consumers.get(queue);
    if (!consumer) {
      consumer = this.#startConsumer(queue);
      consumer.catch(() => this.#consumers.delete(queue));
      this.#consumers.set(queue, consumer);
    }
    return consumer;
  }

  async #startConsumer(queue: string): Promise<Consumer> {
    const connection = await this.#open();
    try {
      const channel = await connection.createChannel();
      const consumer: Consumer = {
        channel,
        buffer: [],
        wake: new Set(),
        holds: new ChannelHolds(tagOf),
        open: true,
      };
      const closed = () => {
        consumer.open = false;
        this.#consumers.delete(queue);
        for (const wake of consumer.wake) wake();
      };
      channel.on('close', closed);
      channel.on('error', (error: Error) =>
        this.#logger.warn(`channel of ${queue}: ${error.message}`),
      );
      await channel.prefetch(this.#config.prefetch);
      await channel.consume(
        queue,
        (message) => {
          if (message === null) return closed(); // cancelled by the server (queue deleted)
          consumer.buffer.push(message);
          for (const wake of consumer.wake) wake();
        },
        { noAck: false },
      );
      return consumer;
    } catch (error) {
      throw this.#failure(`consume ${queue}`, error);
    }
  }

  async #publisherChannel(): Promise<ConfirmChannel> {
    this.#publisher ??= (async () => {
      const connection = await this.#open();
      const channel = await connection.createConfirmChannel();
      channel.on('close', () => {
        this.#publisher = undefined;
      });
      channel.on('error', (error: Error) =>
        this.#logger.warn(`publisher channel: ${error.message}`),
      );
      return channel;
    })().catch((error: unknown) => {
      this.#publisher = undefined;
      throw this.#failure('open a channel', error);
    });
    return this.#publisher;
  }

  /** Runs `work` on a short-lived channel: a 404/406 closes only that channel. */
  async #withChannel<T>(action: string, work: (channel: Channel) => Promise<T>): Promise<T> {
    const connection = await this.#open();
    let channel: Channel | undefined;
    try {
      channel = await connection.createChannel();
      channel.on('error', () => {
        // The failing operation's promise carries the same error; it is reported there.
      });
      return await work(channel);
    } catch (error) {
      const explained = explainDeclareError(error, action.replace(/^declare /, ''));
      throw explained
        ? new BrokerError(`RabbitMQ at ${this.#endpoint()}: ${explained}`, { cause: error })
        : this.#failure(action, error);
    } finally {
      await channel?.close().catch(() => {
        // Closed by the server already (after a 404 or 406).
      });
    }
  }

  #open(): Promise<ChannelModel> {
    if (this.#closed) return Promise.reject(new Error('the RabbitMQ broker is closed'));
    const socketOptions = {
      noDelay: true, // Nagle's algorithm costs ~40 ms per confirm round trip
      timeout: this.#config.connectTimeoutMs,
    };
    const url = withHeartbeat(this.#config.url, this.#config.heartbeatSeconds);
    // With a broker secret, a refusal of its credentials (a rotated password) reads it anew and
    // connects once more: every reconnect after a lost connection goes through here.
    this.#connection ??= connectWithSecret(
      { kind: 'rabbitmq', url, secretArn: this.#config.secretArn },
      (at) => this.#connect(at, socketOptions),
      { isAuthFailure: isAmqpAuthFailure },
    ).then(
      (connection) => {
        connection.on('error', (error: Error) =>
          this.#logger.warn(`RabbitMQ connection: ${error.message}`),
        );
        connection.on('close', () => this.#reset());
        return connection;
      },
      (error: unknown) => {
        this.#connection = undefined;
        throw this.#failure('connect', error);
      },
    );
    return this.#connection;
  }

  /** Forgets the connection and everything on it; the next operation reconnects. */
  #reset(): void {
    this.#connection = undefined;
    this.#publisher = undefined;
    this.#delayTopology = undefined;
    this.#declared.clear();
    for (const consumer of this.#consumers.values()) {
      consumer.then(
        (open) => {
          open.open = false;
          for (const wake of open.wake) wake();
        },
        () => undefined,
      );
    }
    this.#consumers.clear();
  }

  #endpoint(): string {
    return describeAmqpEndpoint(this.#config.url);
  }

  #failure(action: string, error: unknown): BrokerError {
    if (error instanceof BrokerError) return error;
    return new BrokerError(
      `RabbitMQ at ${this.#endpoint()}: ${action} failed: ${explainAmqpFailure(error)}`,
      { cause: error },
    );
  }
}

function tagOf(message: ConsumeMessage): number {
  return message.fields.deliveryTag;
}

function waitForMessages(consumer: Consumer, waitMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      consumer.wake.delete(done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, waitMs);
    consumer.wake.add(done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Celery's headers of a dead letter, without our `x-sc-dead-*` reason headers. */
function withoutDeadLetterHeaders(
  headers: Record<string, unknown> | undefined,
): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(headers ?? {}).filter(([key]) => !key.startsWith('x-sc-dead-')),
  );
}

/** Adds amqplib's `heartbeat` query parameter unless the URL sets one. */
function withHeartbeat(url: string, seconds: number): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}heartbeat=${seconds}`;
}

/** `host:port vhost "name"` of an AMQP URL, without credentials. */
export function describeAmqpEndpoint(url: string): string {
  try {
    const parsed = new URL(url);
    const path = parsed.pathname.replace(/^\//, '');
    const vhost = path === '' ? '/' : decodeURIComponent(path);
    const port = parsed.port || (parsed.protocol === 'amqps:' ? '5671' : '5672');
    return `${parsed.hostname}:${port} vhost "${vhost}"`;
  } catch {
    return '(unparseable URL)';
  }
}
