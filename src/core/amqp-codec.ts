/**
 * Celery messages on AMQP 0-9-1 (RabbitMQ, Amazon MQ): publish options shaped for amqplib and
 * decoding of what amqplib (or Lambda's `aws:rmq` event) hands us. No amqplib import: the shapes
 * below are the slice of its types we use.
 */
import { isPlainObject } from './json.js';
import type { TaskMessage } from './message.js';
import { expirationMillis } from './redis-codec.js';
import {
  CONTENT_ENCODING,
  CONTENT_TYPE,
  type DecodeResult,
  decodeDeliveryBytes,
  serializeBody,
  toCeleryHeaders,
} from './wire.js';

/** An AMQP field value with an explicit type, in amqplib's `{'!': type, value}` notation. */
export interface TypedFieldValue {
  readonly '!': 'int' | 'long' | 'double';
  readonly value: number;
}

/** The amqplib `publish` options we set (a slice of amqplib's `Options.Publish`). */
export interface AmqpPublishOptions {
  readonly headers: Record<string, unknown>;
  readonly contentType: string;
  readonly contentEncoding: string;
  readonly deliveryMode: 2;
  readonly priority: number;
  readonly correlationId: string;
  readonly replyTo?: string;
  readonly expiration?: string;
}

/** A message ready for `channel.publish('', queue, content, options)`. */
export interface AmqpEncoded {
  readonly content: Buffer;
  readonly options: AmqpPublishOptions;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * Gives every integer in a header table an explicit AMQP type.
 *
 * amqplib encodes a JS integer in the smallest type that fits (`b`, `s`, `I`, `l`), and py-amqp
 * reads `s` (signed 16-bit) as a short string: a Celery worker then drops its connection in a
 * loop. py-amqp writes `I` for ints that fit 32 bits and `l` beyond, so we do the same.
 */
export function typeAmqpHeaderValue(value: unknown): unknown {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return { '!': 'double', value } satisfies TypedFieldValue;
    const type = value >= INT32_MIN && value <= INT32_MAX ? 'int' : 'long';
    return { '!': type, value } satisfies TypedFieldValue;
  }
  if (Array.isArray(value)) return value.map(typeAmqpHeaderValue);
  if (isPlainObject(value)) {
    const typed: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) typed[key] = typeAmqpHeaderValue(item);
    return typed;
  }
  return value;
}

/**
 * Encodes a message for AMQP as Celery's `send_task` does: JSON text body (no base64),
 * `delivery_mode` 2, `correlation_id` = id, typed integer headers, and `expiration` (ms left
 * until `expires`, a string) when the message expires.
 *
 * @param message - the task message
 * @param now - current time, for `expiration` @defaultValue now
 */
export function encodeAmqpMessage(message: TaskMessage, now: Date = new Date()): AmqpEncoded {
  const headers = typeAmqpHeaderValue(toCeleryHeaders(message)) as Record<string, unknown>;
  const expiration = expirationMillis(message, now);
  return {
    content: Buffer.from(serializeBody(message), 'utf8'),
    options: {
      headers,
      contentType: CONTENT_TYPE,
      contentEncoding: CONTENT_ENCODING,
      deliveryMode: 2,
      priority: message.priority,
      correlationId: message.id,
      ...(message.replyTo ? { replyTo: message.replyTo } : {}),
      ...(expiration === null ? {} : { expiration }),
    },
  };
}

/** The slice of an amqplib `ConsumeMessage` (or `GetMessage`) that decoding reads. */
export interface AmqpDelivery {
  readonly content: Uint8Array;
  readonly fields: {
    readonly exchange: string;
    readonly routingKey: string;
    readonly redelivered: boolean;
  };
  readonly properties: {
    readonly headers?: Record<string, unknown> | undefined;
    readonly contentType?: unknown;
    readonly contentEncoding?: unknown;
    readonly priority?: unknown;
    readonly replyTo?: unknown;
  };
}

/**
 * Decodes an AMQP delivery into a task message. Typed values amqplib hands back
 * (`{'!': 'timestamp', value}`) are unwrapped first; a body that is not UTF-8 is refused. Never
 * throws.
 */
export function decodeAmqpMessage(delivery: AmqpDelivery): DecodeResult {
  return decodeDeliveryBytes({
    headers: withoutBrokerHeaders(untypeAmqpValue(delivery.properties.headers)),
    body: delivery.content,
    contentType: delivery.properties.contentType,
    contentEncoding: delivery.properties.contentEncoding,
    priority: delivery.properties.priority,
    replyTo: delivery.properties.replyTo,
    exchange: delivery.fields.exchange,
    // A message back from the delay levels carries the 28-digit delay prefix in its key.
    routingKey: delivery.fields.routingKey.replace(DELAY_PREFIX, ''),
    redelivered: delivery.fields.redelivered,
  });
}

/** The 28 binary digits kombu's native delayed delivery puts before the routing key. */
const DELAY_PREFIX = /^(?:[01]\.){28}/;

/**
 * Headers RabbitMQ adds on its own (dead-lettering history, quorum delivery counts). They
 * describe this delivery, not the task: carried into a retry they would make it look like a
 * message that died or was delivered before.
 */
const BROKER_HEADERS = new Set([
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-delivery-count',
]);

function withoutBrokerHeaders(headers: unknown): unknown {
  if (!isPlainObject(headers)) return headers;
  return Object.fromEntries(Object.entries(headers).filter(([key]) => !BROKER_HEADERS.has(key)));
}

/**
 * Unwraps amqplib's typed values (`{'!': 'timestamp', value}`) into plain values, recursively:
 * the inverse of {@link typeAmqpHeaderValue} for re-publishing received headers.
 */
export function untypeAmqpValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(untypeAmqpValue);
  if (isPlainObject(value)) {
    if ('!' in value && 'value' in value && Object.keys(value).length === 2) {
      return untypeAmqpValue(value.value);
    }
    const plain: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) plain[key] = untypeAmqpValue(item);
    return plain;
  }
  return value;
}
