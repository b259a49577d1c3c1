/**
 * Lambda's Amazon MQ for RabbitMQ event (`aws:rmq`), decoded into the same message model as a
 * direct consume. Shape as AWS documents it: `rmqMessagesByQueue` keyed `"<queue>::<vhost>"`,
 * base64 `data`, `basicProperties` whose string header values arrive as `{ bytes: [...] }`
 * UTF-8 byte arrays. How void and array headers arrive is not documented: both are read
 * defensively (null or absent; arrays element by element; plain strings too).
 */
import { type AmqpDelivery, decodeAmqpMessage } from '../../core/amqp-codec.js';
import { isPlainObject } from '../../core/json.js';
import type { DecodeResult } from '../../core/wire.js';

/** One message of an `aws:rmq` event. */
export interface RmqEventMessage {
  readonly basicProperties: {
    readonly contentType?: string | null;
    readonly contentEncoding?: string | null;
    readonly headers?: Record<string, unknown> | null;
    readonly deliveryMode?: number | null;
    readonly priority?: number | null;
    readonly correlationId?: string | null;
    readonly replyTo?: string | null;
    readonly expiration?: string | null;
    readonly messageId?: string | null;
    readonly timestamp?: string | null;
    readonly type?: string | null;
    readonly userId?: string | null;
    readonly appId?: string | null;
    readonly clusterId?: string | null;
    readonly bodySize?: number | null;
  };
  readonly redelivered: boolean;
  /** The body, base64. */
  readonly data: string;
}

/** The event Lambda receives from an Amazon MQ for RabbitMQ event source mapping. */
export interface RmqEvent {
  readonly eventSource: 'aws:rmq';
  readonly eventSourceArn: string;
  readonly rmqMessagesByQueue: Record<string, readonly RmqEventMessage[]>;
}

/** One message of the event, decoded. */
export interface RmqEventDelivery {
  readonly queue: string;
  readonly vhost: string;
  readonly result: DecodeResult;
  readonly redelivered: boolean;
  /** The message as it came, for dead-lettering or re-publishing unchanged. */
  readonly source: RmqEventMessage;
}

/**
 * Decodes every message of an `aws:rmq` event, in order. Never throws for a bad message: its
 * result is a decode failure with the reason.
 */
export function decodeRmqEvent(event: RmqEvent): RmqEventDelivery[] {
  const deliveries: RmqEventDelivery[] = [];
  for (const [key, messages] of Object.entries(event.rmqMessagesByQueue ?? {})) {
    const separator = key.lastIndexOf('::');
    const queue = separator === -1 ? key : key.slice(0, separator);
    const vhost = separator === -1 ? '/' : key.slice(separator + 2);
    for (const source of messages) {
      deliveries.push({
        queue,
        vhost,
        result: decodeAmqpMessage(toAmqpDelivery(queue, source)),
        redelivered: source.redelivered === true,
        source,
      });
    }
  }
  return deliveries;
}

/** An event message in the shape amqplib would have handed us. */
export function toAmqpDelivery(queue: string, message: RmqEventMessage): AmqpDelivery {
  const properties = message.basicProperties ?? {};
  const headers = isPlainObject(properties.headers) ? readBytes(properties.headers) : undefined;
  return {
    content: Buffer.from(typeof message.data === 'string' ? message.data : '', 'base64'),
    fields: { exchange: '', routingKey: queue, redelivered: message.redelivered === true },
    properties: {
      headers: headers as Record<string, unknown> | undefined,
      contentType: properties.contentType ?? undefined,
      contentEncoding: properties.contentEncoding ?? undefined,
      priority: properties.priority ?? undefined,
      replyTo: properties.replyTo ?? undefined,
    },
  };
}

/** Turns `{ bytes: [...] }` values back into strings, through arrays and tables. */
function readBytes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(readBytes);
  if (isPlainObject(value)) {
    const bytes = value.bytes;
    if (Object.keys(value).length === 1 && Array.isArray(bytes)) {
      return Buffer.from(bytes as number[]).toString('utf8');
    }
    const table: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) table[key] = readBytes(item);
    return table;
  }
  return value;
}
