/**
 * Celery's remote-control mailbox on RabbitMQ, declared as kombu's `Mailbox` declares it: the
 * fanout exchange `celery.pidbox` and the direct `reply.celery.pidbox` (neither durable), and
 * the worker's node queue `<hostname>.celery.pidbox` (not durable, auto-deleted, expiring 10 s
 * after its worker is gone, messages living 300 s: Celery's `control_queue_expires` and
 * `control_queue_ttl`). Replies are published transient with the `ticket` header the client
 * collects them by.
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { RabbitMqBrokerConfig } from '../../config/broker-config.js';
import { connectWithSecret } from '../../config/broker-secret.js';
import { BrokerError } from '../../core/errors.js';
import type { JsonValue } from '../../core/json.js';
import {
  CONTROL_NAMESPACE,
  type ControlMailbox,
  type ControlReplyTo,
  type ControlRequest,
  parseControlRequest,
} from '../../core/remote-control.js';
import { type AmqpConnect, amqplibConnect } from './amqp-connect.js';
import { explainAmqpFailure, isAmqpAuthFailure } from './amqp-failure.js';

const REQUESTS = `${CONTROL_NAMESPACE}.pidbox`;
/** Celery's `control_queue_expires` and `control_queue_ttl`, in ms. */
const NODE_QUEUE_ARGUMENTS = { 'x-expires': 10_000, 'x-message-ttl': 300_000 };
/** How long after a lost connection the mailbox listens again. */
const RELISTEN_AFTER_MS = 2_000;

/** A worker's pidbox on RabbitMQ, over a connection of its own. */
export class RabbitMqControlMailbox implements ControlMailbox {
  readonly #config: RabbitMqBrokerConfig;
  readonly #connect: AmqpConnect;
  #connection: ChannelModel | undefined;
  #channel: Channel | undefined;
  #declared = new Set<string>();
  #closed = false;

  constructor(config: RabbitMqBrokerConfig, connect: AmqpConnect = amqplibConnect) {
    this.#config = config;
    this.#connect = connect;
  }

  async listen(hostname: string, onRequest: (request: ControlRequest) => void): Promise<void> {
    try {
      const channel = await this.#open(() => {
        // A lost connection: listen again, as a Celery worker's consumer reconnects.
        setTimeout(() => {
          if (!this.#closed) this.listen(hostname, onRequest).catch(() => undefined);
        }, RELISTEN_AFTER_MS).unref();
      });
      const queue = `${hostname}.${REQUESTS}`;
      await channel.assertExchange(REQUESTS, 'fanout', { durable: false, autoDelete: false });
      await channel.assertQueue(queue, {
        durable: false,
        autoDelete: true,
        arguments: NODE_QUEUE_ARGUMENTS,
      });
      await channel.bindQueue(queue, REQUESTS, '');
      await channel.consume(
        queue,
        (message) => {
          if (!message) return;
          const request = parseControlRequest(parseJson(message.content.toString('utf8')));
          if (request) onRequest(request);
        },
        { noAck: true },
      );
    } catch (error) {
      throw this.#failure(`listen on ${hostname}.${REQUESTS}`, error);
    }
  }

  async reply(to: ControlReplyTo, ticket: string | null, body: JsonValue): Promise<void> {
    try {
      const channel = this.#channel ?? (await this.#open(() => undefined));
      if (!this.#declared.has(to.exchange)) {
        await channel.assertExchange(to.exchange, 'direct', { durable: false, autoDelete: false });
        this.#declared.add(to.exchange);
      }
      channel.publish(to.exchange, to.routingKey, Buffer.from(JSON.stringify(body), 'utf8'), {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        headers: { ticket, clock: 0 },
        deliveryMode: 1,
      });
    } catch (error) {
      throw this.#failure(`reply to ${to.routingKey}`, error);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const connection = this.#connection;
    this.#connection = undefined;
    this.#channel = undefined;
    await connection?.close().catch(() => {
      // Closed by the server or the network already: nothing left to close.
    });
  }

  async #open(onLost: () => void): Promise<Channel> {
    const connection = await connectWithSecret(
      { kind: 'rabbitmq', url: this.#config.url, secretArn: this.#config.secretArn },
      (url) => this.#connect(url, { noDelay: true, timeout: this.#config.connectTimeoutMs }),
      { isAuthFailure: isAmqpAuthFailure },
    );
    connection.on('error', () => {
      // Followed by 'close'.
    });
    connection.on('close', () => {
      if (this.#connection !== connection) return;
      this.#connection = undefined;
      this.#channel = undefined;
      this.#declared.clear();
      onLost();
    });
    const channel = await connection.createChannel();
    channel.on('error', () => {
      // A channel error closes the connection's use here; 'close' of the connection follows.
    });
    this.#connection = connection;
    this.#channel = channel;
    return channel;
  }

  #failure(action: string, error: unknown): BrokerError {
    if (error instanceof BrokerError) return error;
    return new BrokerError(
      `RabbitMQ remote control: ${action} failed: ${explainAmqpFailure(error)}`,
      {
        cause: error,
      },
    );
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON: nothing to answer.
    return undefined;
  }
}
