/**
 * Celery events on RabbitMQ: published to the `celeryev` *topic* exchange, declared as Celery
 * declares it (kombu `Exchange('celeryev', type='topic')`: durable, not auto-deleted), routed by
 * the event type with `-` → `.` (`task.succeeded`), with the properties py-amqp sends for them
 * (observed on Celery 5.2.6 and 5.6.3): `application/json`, `utf-8`, header `hostname`,
 * `delivery_mode` 1 (transient) and priority 0. Receivers bind their own auto-deleted queue with
 * `#`; with none bound, RabbitMQ drops the events, as it does Python Celery's.
 */
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import type { RabbitMqBrokerConfig } from '../../config/broker-config.js';
import { connectWithSecret } from '../../config/broker-secret.js';
import { CELERY_EVENT_EXCHANGE, type EventDraft } from '../../core/celery-events.js';
import { BrokerError } from '../../core/errors.js';
import {
  type EventDispatcher,
  type EventStamp,
  EventStamper,
  eventMessages,
  type SendEventsOptions,
} from '../../core/event-dispatcher.js';
import { type AmqpConnect, amqplibConnect } from './amqp-connect.js';
import { explainAmqpFailure, isAmqpAuthFailure } from './amqp-failure.js';

/** Options of {@link RabbitMqEventDispatcher}. */
export interface RabbitMqEventDispatcherOptions extends EventStamp {
  /** The broker's configuration: URL, heartbeat, timeouts, secret. */
  readonly config: RabbitMqBrokerConfig;
  /**
   * Wait for the broker's publisher confirms before {@link RabbitMqEventDispatcher.send}
   * resolves. Python Celery does not (a plain channel); a Lambda should, or events still in
   * the socket buffer when the environment is frozen arrive late or never. @defaultValue true
   */
  readonly confirm?: boolean;
  /** Opens the connection (tests wrap it). @defaultValue amqplib's `connect` */
  readonly connect?: AmqpConnect;
}

/** Publishes Celery events on RabbitMQ over a connection of its own, opened on the first send. */
export class RabbitMqEventDispatcher implements EventDispatcher {
  readonly kind = 'rabbitmq' as const;
  readonly #config: RabbitMqBrokerConfig;
  readonly #stamper: EventStamper;
  readonly #confirm: boolean;
  readonly #connect: AmqpConnect;
  #connection: Promise<ChannelModel> | undefined;
  #channel: Promise<Channel | ConfirmChannel> | undefined;
  #closed = false;

  constructor(options: RabbitMqEventDispatcherOptions) {
    this.#config = options.config;
    this.#stamper = new EventStamper(options);
    this.#confirm = options.confirm ?? true;
    this.#connect = options.connect ?? amqplibConnect;
  }

  get hostname(): string {
    return this.#stamper.hostname;
  }

  async send(drafts: readonly EventDraft[], options: SendEventsOptions = {}): Promise<void> {
    if (drafts.length === 0) return;
    const action = `publish ${drafts.length} event(s)`;
    const channel = await this.#openChannel(action);
    try {
      for (const message of eventMessages(drafts, this.#stamper, options)) {
        const written = channel.publish(
          CELERY_EVENT_EXCHANGE,
          message.routingKey,
          Buffer.from(message.body, 'utf8'),
          {
            contentType: 'application/json',
            contentEncoding: 'utf-8',
            headers: message.headers,
            deliveryMode: 1,
            priority: 0,
          },
        );
        if (!written) await drained(channel);
      }
      if ('waitForConfirms' in channel) await channel.waitForConfirms();
    } catch (error) {
      throw this.#failure(action, error);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const connection = this.#connection;
    this.#connection = undefined;
    this.#channel = undefined;
    const open = await connection?.catch(() => undefined);
    await open?.close().catch(() => {
      // Closed by the server or the network already: nothing left to close.
    });
  }

  #openChannel(action: string): Promise<Channel | ConfirmChannel> {
    if (this.#closed) return Promise.reject(new Error('the RabbitMQ event dispatcher is closed'));
    this.#channel ??= (async () => {
      const connection = await this.#open();
      const channel = this.#confirm
        ? await connection.createConfirmChannel()
        : await connection.createChannel();
      channel.on('close', () => {
        this.#channel = undefined;
      });
      channel.on('error', () => {
        // A channel error closes the channel; 'close' above forgets it, the next send reopens.
      });
      await channel.assertExchange(CELERY_EVENT_EXCHANGE, 'topic', {
        durable: true,
        autoDelete: false,
      });
      return channel;
    })().catch((error: unknown) => {
      this.#channel = undefined;
      throw this.#failure(action, error);
    });
    return this.#channel;
  }

  #open(): Promise<ChannelModel> {
    const socketOptions = { noDelay: true, timeout: this.#config.connectTimeoutMs };
    const url = withHeartbeat(this.#config.url, this.#config.heartbeatSeconds);
    this.#connection ??= connectWithSecret(
      { kind: 'rabbitmq', url, secretArn: this.#config.secretArn },
      (at) => this.#connect(at, socketOptions),
      { isAuthFailure: isAmqpAuthFailure },
    ).then(
      (connection) => {
        connection.on('error', () => {
          // Followed by 'close', which forgets the connection; the next send reconnects.
        });
        connection.on('close', () => {
          this.#connection = undefined;
          this.#channel = undefined;
        });
        return connection;
      },
      (error: unknown) => {
        this.#connection = undefined;
        throw error;
      },
    );
    return this.#connection;
  }

  #failure(action: string, error: unknown): BrokerError {
    if (error instanceof BrokerError) return error;
    return new BrokerError(`RabbitMQ events: ${action} failed: ${explainAmqpFailure(error)}`, {
      cause: error,
    });
  }
}

/**
 * Waits until a full socket buffer drains, or the channel closes (the confirm wait or the next
 * publish then fails), so that a lost connection never leaves a send waiting forever.
 */
function drained(channel: Channel): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      channel.off('drain', done);
      channel.off('close', done);
      resolve();
    };
    channel.once('drain', done);
    channel.once('close', done);
  });
}

/** Adds amqplib's `heartbeat` query parameter unless the URL sets one. */
function withHeartbeat(url: string, seconds: number): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}heartbeat=${seconds}`;
}
