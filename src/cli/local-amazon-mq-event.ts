/**
 * The `aws:rmq` event of Amazon MQ's event source, built from messages consumed with amqplib:
 * base64 `data`, `basicProperties` whose string header values (and byte arrays) become
 * `{ bytes: [...] }` UTF-8 byte arrays, `"<queue>::<vhost>"` keys. The dispatcher reads it back
 * with `decodeRmqEvent`, as it reads the events AWS sends.
 */
import type { ConsumeMessage } from 'amqplib';
import type { RmqEvent, RmqEventMessage } from '../brokers/rabbitmq/amazon-mq-event.js';
import { untypeAmqpValue } from '../core/amqp-codec.js';

/** The ARN the local events name as their source (no broker in AWS stands behind it). */
export const LOCAL_BROKER_ARN = 'arn:aws:mq:us-east-1:000000000000:broker:local:b-local';

/** The message as the event source frames it for Lambda. */
export function toRmqEventMessage(
  message: Pick<ConsumeMessage, 'content' | 'fields' | 'properties'>,
): RmqEventMessage {
  const { properties } = message;
  const headers = properties.headers ? toEventValue(untypeAmqpValue(properties.headers)) : null;
  return {
    basicProperties: {
      contentType: properties.contentType ?? null,
      contentEncoding: properties.contentEncoding ?? null,
      headers: headers as Record<string, unknown> | null,
      deliveryMode: properties.deliveryMode ?? null,
      priority: properties.priority ?? null,
      correlationId: properties.correlationId ?? null,
      replyTo: properties.replyTo ?? null,
      expiration: properties.expiration ?? null,
      messageId: properties.messageId ?? null,
      timestamp: properties.timestamp === undefined ? null : String(properties.timestamp),
      type: properties.type ?? null,
      userId: properties.userId ?? null,
      appId: properties.appId ?? null,
      clusterId: properties.clusterId ?? null,
      bodySize: message.content.byteLength,
    },
    redelivered: message.fields.redelivered,
    data: message.content.toString('base64'),
  };
}

/** An `aws:rmq` event holding `messages` of `queue` in `vhost`. */
export function toRmqEvent(
  queue: string,
  vhost: string,
  messages: readonly Pick<ConsumeMessage, 'content' | 'fields' | 'properties'>[],
): RmqEvent {
  return {
    eventSource: 'aws:rmq',
    eventSourceArn: LOCAL_BROKER_ARN,
    rmqMessagesByQueue: { [`${queue}::${vhost}`]: messages.map(toRmqEventMessage) },
  };
}

/** String header values (and byte arrays) as `{ bytes: [...] }`, through arrays and tables. */
function toEventValue(value: unknown): unknown {
  if (typeof value === 'string') return { bytes: [...Buffer.from(value, 'utf8')] };
  if (value instanceof Uint8Array) return { bytes: [...value] };
  if (Array.isArray(value)) return value.map(toEventValue);
  if (value instanceof Date) return value.getTime();
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, toEventValue(item)]),
    );
  }
  return value;
}

/** The vhost of an AMQP URL, as the event's queue keys name it (`/` when none). */
export function vhostOf(url: string): string {
  const path = new URL(url).pathname.replace(/^\//, '');
  return path === '' ? '/' : decodeURIComponent(path);
}
