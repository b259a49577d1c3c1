/**
 * Amazon MQ for RabbitMQ's `aws:rmq` events for the dispatcher's tests: the shared fixture, events
 * framed from any AMQP message (as the event source frames them: base64 data, string headers as
 * byte arrays), and a stand-in for the event source that takes messages off a real queue.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Channel, GetMessage } from 'amqplib';
import type { RmqEvent, RmqEventMessage } from '../../src/brokers/rabbitmq/amazon-mq-event.js';
import { encodeAmqpMessage, untypeAmqpValue } from '../../src/core/amqp-codec.js';
import type { TaskMessage } from '../../src/core/message.js';

/** The folder of `aws:rmq` event fixtures, shared with the other tools. */
export const AWS_FIXTURES_DIR = path.resolve(import.meta.dirname, '../../../shared/fixtures/aws');

/** An `aws:rmq` event fixture (`rmq-celery-plain`: Celery's plain message on `important_queue`). */
export function loadRmqEventFixture(name = 'rmq-celery-plain'): RmqEvent {
  return JSON.parse(readFileSync(path.join(AWS_FIXTURES_DIR, `${name}.json`), 'utf8')) as RmqEvent;
}

/** An `aws:rmq` event holding `messages` of each queue (`vhost` `/` unless said otherwise). */
export function rmqEvent(
  messages: Record<string, readonly RmqEventMessage[]>,
  vhost = '/',
): RmqEvent {
  return {
    eventSource: 'aws:rmq',
    eventSourceArn: 'arn:aws:mq:us-east-1:123456789012:broker:tasks:b-test',
    rmqMessagesByQueue: Object.fromEntries(
      Object.entries(messages).map(([queue, items]) => [`${queue}::${vhost}`, items]),
    ),
  };
}

/** What an AMQP message looks like to the event source, before it frames it for Lambda. */
export interface AmqpParts {
  readonly body: Uint8Array | string;
  readonly headers?: Record<string, unknown> | null;
  readonly contentType?: string | null;
  readonly contentEncoding?: string | null;
  readonly priority?: number | null;
  readonly correlationId?: string | null;
  readonly replyTo?: string | null;
  readonly redelivered?: boolean;
}

/**
 * A message framed as Lambda's event source frames it: base64 `data`, string header values (and
 * byte arrays) as `{ bytes: [...] }`, numbers as numbers, arrays and tables element by element.
 */
export function rmqEventMessageFrom(parts: AmqpParts): RmqEventMessage {
  const body = typeof parts.body === 'string' ? Buffer.from(parts.body, 'utf8') : parts.body;
  return {
    basicProperties: {
      contentType: parts.contentType ?? null,
      contentEncoding: parts.contentEncoding ?? null,
      headers: parts.headers
        ? (toEventValue(untypeAmqpValue(parts.headers)) as Record<string, unknown>)
        : null,
      deliveryMode: 2,
      priority: parts.priority ?? null,
      correlationId: parts.correlationId ?? null,
      replyTo: parts.replyTo ?? null,
      expiration: null,
      messageId: null,
      timestamp: null,
      type: null,
      userId: null,
      appId: null,
      clusterId: null,
      bodySize: body.byteLength,
    },
    redelivered: parts.redelivered ?? false,
    data: Buffer.from(body).toString('base64'),
  };
}

/** Our own message as the event source would hand it to the dispatcher. */
export function rmqEventMessageOf(message: TaskMessage, redelivered = false): RmqEventMessage {
  const { content, options } = encodeAmqpMessage(message);
  return rmqEventMessageFrom({
    body: content,
    headers: options.headers,
    contentType: options.contentType,
    contentEncoding: options.contentEncoding,
    priority: options.priority,
    correlationId: options.correlationId,
    redelivered,
  });
}

function toEventValue(value: unknown): unknown {
  if (typeof value === 'string') return { bytes: [...Buffer.from(value, 'utf8')] };
  if (value instanceof Uint8Array) return { bytes: [...value] };
  if (Array.isArray(value)) return value.map(toEventValue);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, toEventValue(item)]),
    );
  }
  return value;
}

/** Messages taken off a real queue as the event source takes them, framed as its event. */
export interface TakenEvent {
  readonly event: RmqEvent;
  /** The AMQP headers of each message, as the broker holds them. */
  readonly headers: readonly Record<string, unknown>[];
  /** Acknowledges the messages: what the event source does once the function returned. */
  ack(): void;
}

/**
 * Plays Amazon MQ's event source on a real queue: takes up to `count` messages off `queue` with
 * `basic.get` (waiting up to `timeoutMs` for them to arrive) and frames them as an `aws:rmq` event.
 */
export async function takeRmqEvent(
  channel: Channel,
  queue: string,
  count: number,
  timeoutMs = 8_000,
): Promise<TakenEvent> {
  const taken: GetMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (taken.length < count && Date.now() < deadline) {
    const message = await channel.get(queue, { noAck: false });
    if (message) taken.push(message);
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const event = rmqEvent({
    [queue]: taken.map((message) =>
      rmqEventMessageFrom({
        body: message.content,
        headers: message.properties.headers ?? null,
        contentType: message.properties.contentType ?? null,
        contentEncoding: message.properties.contentEncoding ?? null,
        priority: message.properties.priority ?? null,
        correlationId: message.properties.correlationId ?? null,
        redelivered: message.fields.redelivered,
      }),
    ),
  });
  return {
    event,
    headers: taken.map((message) => message.properties.headers ?? {}),
    ack: () => {
      for (const message of taken) channel.ack(message);
    },
  };
}
