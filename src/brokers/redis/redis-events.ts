/**
 * Celery events on Redis, as kombu's Redis transport sends them: kombu turns the `celeryev`
 * exchange into a *fanout* exchange on Redis (celery/events/event.py `get_exchange`), and a
 * fanout publish is a Redis `PUBLISH` (kombu/transport/redis.py `_put_fanout`) of the same JSON
 * envelope a queued message has, on the channel `<global_keyprefix>/<db>.celeryev/<routing key>`
 * (`keyprefix_fanout = '/{db}.'`, `_get_publish_topic`). Receivers `PSUBSCRIBE` to
 * `/<db>.celeryev/*`; nothing is stored, so events sent while nobody listens are gone, as with
 * Python Celery.
 */
import type { RedisBrokerConfig } from '../../config/broker-config.js';
import { brokerUrlOf } from '../../config/broker-secret.js';
import { CELERY_EVENT_EXCHANGE, type EventDraft } from '../../core/celery-events.js';
import {
  type EventDispatcher,
  type EventFrame,
  type EventMessage,
  type EventStamp,
  EventStamper,
  eventMessages,
  type SendEventsOptions,
} from '../../core/event-dispatcher.js';
import { loadRedisClient } from './redis-client.js';
import { connectRedis, redisFailure } from './redis-connection.js';

/** The slice of an ioredis client the dispatcher calls. */
export interface EventRedisClient {
  /** A Redis Cluster client (ioredis' `Cluster`), which sends a keyless command to any node. */
  readonly isCluster?: boolean;
  publish(channel: string, message: string | Buffer): Promise<number>;
  pipeline(): {
    publish(channel: string, message: string | Buffer): unknown;
    exec(): Promise<[Error | null, unknown][] | null>;
  };
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** Options of {@link RedisEventDispatcher}. */
export interface RedisEventDispatcherOptions extends EventStamp {
  /** The broker's configuration: URL (and its database), `keyPrefix`, TLS, secret. */
  readonly config: RedisBrokerConfig;
  /**
   * kombu's `fanout_prefix` transport option: `true` is `/<db>.`, a string replaces it, `false`
   * drops it (kombu 3 compatibility). Must match the receivers'. @defaultValue true
   */
  readonly fanoutPrefix?: boolean | string;
  /**
   * kombu's `fanout_patterns`: append `/<routing key>` to the channel. Must match the
   * receivers'. @defaultValue true
   */
  readonly fanoutPatterns?: boolean;
  /** A client to use instead of connecting (tests). It is not closed by {@link close}. */
  readonly client?: EventRedisClient;
}

/** Publishes Celery events on Redis. Connects on the first send; reuse it across invocations. */
export class RedisEventDispatcher implements EventDispatcher {
  readonly kind = 'redis' as const;
  readonly #config: RedisBrokerConfig;
  readonly #stamper: EventStamper;
  readonly #channelPrefix: string;
  readonly #fanoutPatterns: boolean;
  readonly #ownsClient: boolean;
  readonly #envelope: EventFrame;
  #client: Promise<EventRedisClient> | undefined;
  #lastError: () => Error | undefined = () => undefined;
  #closed = false;

  constructor(options: RedisEventDispatcherOptions) {
    this.#config = options.config;
    this.#stamper = new EventStamper(options, { quoted: true });
    this.#channelPrefix = fanoutChannel(
      options.config,
      CELERY_EVENT_EXCHANGE,
      options.fanoutPrefix,
    );
    this.#fanoutPatterns = options.fanoutPatterns ?? true;
    this.#envelope = kombuEnvelope(this.#stamper.hostname);
    this.#ownsClient = options.client === undefined;
    if (options.client) this.#client = Promise.resolve(options.client);
  }

  get hostname(): string {
    return this.#stamper.hostname;
  }

  /** The channel an event with `routingKey` is published on, e.g. `/0.celeryev/task.succeeded`. */
  channelOf(routingKey: string): string {
    return this.#fanoutPatterns ? `${this.#channelPrefix}/${routingKey}` : this.#channelPrefix;
  }

  async send(drafts: readonly EventDraft[], options: SendEventsOptions = {}): Promise<void> {
    if (drafts.length === 0) return;
    const messages = eventMessages(drafts, this.#stamper, options, this.#envelope);
    const action = `publish ${drafts.length} event(s)`;
    const client = await this.#connection(action);
    try {
      // A cluster sends each keyless command to a node of its choosing, so messages sent apart
      // could reach receivers out of order (each node forwards them over the cluster bus): one
      // pipeline keeps them on one node.
      const batches = client.isCluster ? [messages] : writeBatches(messages);
      const replies = await Promise.allSettled(
        batches.map((batch) => this.#publish(client, batch)),
      );
      const failed = replies.find((reply) => reply.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (error) {
      throw redisFailure(this.#config.url, action, error, this.#lastError());
    }
  }

  /** One message as one command; more as one pipeline (one write, replies in order). */
  async #publish(client: EventRedisClient, batch: readonly EventMessage[]): Promise<void> {
    if (batch.length === 1) {
      const [message] = batch as [EventMessage];
      await client.publish(this.channelOf(message.routingKey), message.body);
      return;
    }
    const pipeline = client.pipeline();
    for (const message of batch) {
      pipeline.publish(this.channelOf(message.routingKey), message.body);
    }
    const replies = await pipeline.exec();
    const failed = replies?.find(([error]) => error)?.[0];
    if (failed) throw failed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    if (!client || !this.#ownsClient) return;
    const open = await client.catch(() => undefined);
    await open?.quit().catch(() => {
      // Already disconnected: nothing left to close.
      open.disconnect();
    });
  }

  #connection(action: string): Promise<EventRedisClient> {
    if (this.#closed) return Promise.reject(new Error('the Redis event dispatcher is closed'));
    this.#client ??= (async () => {
      const url = await brokerUrlOf(this.#config);
      await loadRedisClient();
      const { client, lastError } = connectRedis({
        url,
        connectTimeoutMs: this.#config.connectTimeoutMs,
        connectionName: 'serverless-celery:events',
        ...(this.#config.tls ? { tls: this.#config.tls } : {}),
      });
      this.#lastError = lastError;
      return client;
    })().catch((error: unknown) => {
      this.#client = undefined;
      throw redisFailure(this.#config.url, action, error);
    });
    return this.#client;
  }
}

/**
 * Characters per write at most, a message larger than this going alone. Node copies a string
 * it writes into a buffer of three times its length, and past 128 kB glibc maps such a buffer
 * page by page, which a virtual machine faults in one at a time: a flush of a thousand events
 * as one pipeline (~300 kB) cost the worker half again the CPU of separate writes (18 against
 * 12 µs per task, measured in-process before the rest of this change; bench/celery-events.ts,
 * the worker's flush, shows the whole of it), while small messages (`task-sent`) are best
 * pipelined together.
 */
const WRITE_CHARS = 32 * 1024;

/** Consecutive messages grouped into writes of at most {@link WRITE_CHARS}, in order. */
function writeBatches(messages: readonly EventMessage[]): EventMessage[][] {
  const batches: EventMessage[][] = [];
  let current: EventMessage[] = [];
  let size = 0;
  for (const message of messages) {
    if (current.length > 0 && size + message.body.length > WRITE_CHARS) {
      batches.push(current);
      current = [];
      size = 0;
    }
    current.push(message);
    size += message.body.length;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * The channel kombu publishes a fanout `exchange` on: `<global_keyprefix><keyprefix_fanout>
 * <exchange>`, kombu's `keyprefix_fanout` (`fanoutPrefix`: `true` is `/{db}.`, a string
 * replaces it, `false` drops it) formatted with the URL's database.
 */
export function fanoutChannel(
  config: RedisBrokerConfig,
  exchange: string,
  fanoutPrefix: boolean | string = true,
): string {
  if (fanoutPrefix === false) return `${config.keyPrefix}${exchange}`;
  const template = fanoutPrefix === true ? '/{db}.' : fanoutPrefix;
  const prefix = template.replaceAll('{db}', String(databaseOf(config.url)));
  return `${config.keyPrefix}${prefix}${exchange}`;
}

function databaseOf(url: string): number {
  const path = URL.canParse(url) ? new URL(url).pathname.replace(/^\//, '') : '';
  return /^\d+$/.test(path) ? Number(path) : 0;
}

/**
 * kombu's envelope of a published message (virtual `Channel.prepare_message` and
 * `_inplace_augment_message`), keys in kombu's order, `delivery_mode` 1 (events are transient),
 * priority 0, and the body as plain JSON text: what kombu writes with its `body_encoding`
 * transport option set to `None` (`encode_body` then leaves the body as it is), and what every
 * kombu reader takes (`decode_body` with no encoding returns the body unchanged; real Celery
 * 5.2.6 and 5.6.3 receivers, test/integration/celery-events.test.ts). Celery's default,
 * base64, is a third more bytes to encode, send and decode, three times per task. The body
 * comes stamped `quoted` (escaped for a JSON string), so it is written as it is.
 *
 * The frame is joined with the events' text into one flat string (`eventMessages`), which
 * ioredis writes as it is. Text, not a Buffer: ioredis copies a Buffer argument into the
 * command's buffer first; measured when messages were pipelined, Buffers cost a no-op drain
 * 0.95 s more worker CPU per 40k tasks, text 0.55 s (bench/peers/ours.ts, events on and off).
 */
function kombuEnvelope(hostname: string): EventFrame {
  const headers = JSON.stringify({ hostname });
  return (routingKey) => [
    '{"body":"',
    `","content-encoding":"utf-8","content-type":"application/json","headers":${headers},` +
      `"properties":{"delivery_mode":1,"delivery_info":{"exchange":"${CELERY_EVENT_EXCHANGE}",` +
      `"routing_key":${JSON.stringify(routingKey)}},"priority":0,"body_encoding":null,` +
      `"delivery_tag":"${crypto.randomUUID()}"}}`,
  ];
}
