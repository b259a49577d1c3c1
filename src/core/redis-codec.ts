/**
 * kombu's Redis transport framing, byte-compatible with kombu 5.2–5.6: the JSON envelope pushed
 * onto a list, the priority lists, the binding set members and the `unacked` hash entries.
 * Pure string work; the ioredis adapter does the I/O.
 */
import { INVALID_MESSAGE_REASONS, InvalidMessageError } from './errors.js';
import { isPlainObject } from './json.js';
import type { TaskMessage } from './message.js';
import {
  CONTENT_ENCODING,
  CONTENT_TYPE,
  type DecodeResult,
  decodeDelivery,
  decodeDeliveryBytes,
  type RawDelivery,
  serializeBody,
  toCeleryHeaders,
} from './wire.js';

/** kombu's separator inside priority list names and binding members: bytes 0x06 0x16. */
export const KOMBU_SEPARATOR = '\x06\x16';

/** kombu's priority steps on Redis. Step 0 is consumed first: the opposite of RabbitMQ. */
export const REDIS_PRIORITY_STEPS = [0, 3, 6, 9] as const;

/**
 * The list a message of `priority` goes to: clamp to 0–9, take the largest step ≤ priority;
 * step 0 is the queue itself, others are `<queue>\x06\x16<step>`.
 */
export function redisPriorityKey(queue: string, priority: number): string {
  const clamped = Math.min(9, Math.max(0, Math.trunc(priority)));
  let step = 0;
  for (const candidate of REDIS_PRIORITY_STEPS) if (candidate <= clamped) step = candidate;
  return step === 0 ? queue : `${queue}${KOMBU_SEPARATOR}${step}`;
}

/** The four lists of a queue in the order kombu's `BRPOP` drains them (priority 0 first). */
export function redisQueueKeys(queue: string): string[] {
  return REDIS_PRIORITY_STEPS.map((step) => redisPriorityKey(queue, step));
}

/** The `_kombu.binding.<queue>` member kombu writes for a queue on the default direct route. */
export function redisBindingMember(queue: string): string {
  return `${queue}${KOMBU_SEPARATOR}${KOMBU_SEPARATOR}${queue}`;
}

/** A message framed for Redis. */
export interface RedisEncoded {
  /** List to `LPUSH` the envelope onto. */
  readonly key: string;
  /** The kombu envelope, JSON text. */
  readonly envelope: string;
  /** The envelope's `properties.delivery_tag`: the key of its `unacked` entry once received. */
  readonly deliveryTag: string;
}

/**
 * Frames a message as kombu's Redis envelope: base64 body, `delivery_tag`, `delivery_info`, and
 * the `expiration` property when the message expires (as Celery's `send_task` sets it).
 *
 * @param message - the task message
 * @param options.deliveryTag - reuse a tag (restores keep theirs) @defaultValue a new uuid4
 * @param options.now - current time, for `expiration` @defaultValue now
 */
export function encodeRedisMessage(
  message: TaskMessage,
  options: { deliveryTag?: string; now?: Date } = {},
): RedisEncoded {
  const deliveryTag = options.deliveryTag ?? crypto.randomUUID();
  const properties: Record<string, unknown> = {
    correlation_id: message.id,
    reply_to: message.replyTo ?? '',
    delivery_mode: 2,
    delivery_info: message.redelivered
      ? { exchange: message.exchange, routing_key: message.routingKey, redelivered: true }
      : { exchange: message.exchange, routing_key: message.routingKey },
    priority: message.priority,
    body_encoding: 'base64',
    delivery_tag: deliveryTag,
  };
  const expiration = expirationMillis(message, options.now ?? new Date());
  if (expiration !== null) properties.expiration = expiration;
  const envelope = JSON.stringify({
    body: Buffer.from(serializeBody(message), 'utf8').toString('base64'),
    'content-encoding': CONTENT_ENCODING,
    'content-type': CONTENT_TYPE,
    headers: toCeleryHeaders(message),
    properties,
  });
  return { key: redisPriorityKey(message.routingKey, message.priority), envelope, deliveryTag };
}

/**
 * Frames a delivery in its wire form (possibly not even a valid task message) as a kombu
 * envelope, so that a dead letter stored on Redis can be replayed like any message.
 */
export function encodeRedisEnvelopeFromRaw(raw: RawDelivery): string {
  return JSON.stringify({
    body: Buffer.from(raw.body, 'utf8').toString('base64'),
    'content-encoding': raw.contentEncoding ?? CONTENT_ENCODING,
    'content-type': raw.contentType ?? null,
    headers: raw.headers ?? {},
    properties: {
      correlation_id:
        isPlainObject(raw.headers) && typeof raw.headers.id === 'string' ? raw.headers.id : null,
      reply_to: raw.replyTo ?? '',
      delivery_mode: 2,
      delivery_info: { exchange: raw.exchange, routing_key: raw.routingKey },
      priority: typeof raw.priority === 'number' ? raw.priority : 0,
      body_encoding: 'base64',
      delivery_tag: crypto.randomUUID(),
    },
  });
}

/**
 * The per-message TTL Celery derives from `expires`: milliseconds left, as a string, never
 * negative. `null` when the message does not expire.
 */
export function expirationMillis(message: TaskMessage, now: Date): string | null {
  if (!message.expires) return null;
  return String(Math.max(0, Math.trunc(message.expires.getTime() - now.getTime())));
}

/** A decoded Redis envelope: the task message, plus the transport fields settlement needs. */
export type RedisDecodeResult = DecodeResult & {
  /** `properties.delivery_tag`, when the envelope had one. */
  readonly deliveryTag: string | null;
};

/**
 * Decodes one kombu envelope as found in a queue list or an `unacked` entry.
 * Never throws: a broken envelope is a failure result with the reason.
 */
export function decodeRedisMessage(raw: string): RedisDecodeResult {
  let envelope: unknown;
  try {
    envelope = JSON.parse(raw);
  } catch (error) {
    return envelopeFailure(`envelope is not JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(envelope)) return envelopeFailure('envelope is not a JSON object');
  const properties = isPlainObject(envelope.properties) ? envelope.properties : {};
  const deliveryInfo = isPlainObject(properties.delivery_info) ? properties.delivery_info : {};
  const deliveryTag = typeof properties.delivery_tag === 'string' ? properties.delivery_tag : null;
  if (typeof envelope.body !== 'string') {
    return { ...envelopeFailure('envelope has no string body'), deliveryTag };
  }
  // Raw JSON text without body_encoding; bytes once base64-decoded (their UTF-8 is checked).
  let body: string | Uint8Array = envelope.body;
  if (properties.body_encoding === 'base64') {
    // Python's b64decode refuses bad padding; Buffer.from would quietly decode a prefix.
    const compact = envelope.body.replace(/\s+/g, '');
    if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
      return { ...envelopeFailure('body is not valid base64'), deliveryTag };
    }
    body = Buffer.from(compact, 'base64');
  } else if (properties.body_encoding !== undefined && properties.body_encoding !== null) {
    return {
      ...envelopeFailure(`unknown body_encoding ${JSON.stringify(properties.body_encoding)}`),
      deliveryTag,
    };
  }
  const delivery = {
    headers: envelope.headers,
    contentType: envelope['content-type'],
    contentEncoding: envelope['content-encoding'],
    priority: properties.priority,
    replyTo: properties.reply_to,
    exchange: typeof deliveryInfo.exchange === 'string' ? deliveryInfo.exchange : '',
    routingKey: typeof deliveryInfo.routing_key === 'string' ? deliveryInfo.routing_key : '',
    redelivered: deliveryInfo.redelivered === true,
  };
  const result =
    typeof body === 'string'
      ? decodeDelivery({ ...delivery, body })
      : decodeDeliveryBytes({ ...delivery, body });
  return { ...result, deliveryTag };
}

function envelopeFailure(detail: string): RedisDecodeResult {
  return {
    ok: false,
    error: new InvalidMessageError(INVALID_MESSAGE_REASONS.malformedEnvelope, detail),
    id: null,
    task: null,
    deliveryTag: null,
  };
}

/**
 * The value kombu stores in the `unacked` hash: JSON `[envelope, exchange, routing_key]`.
 * Built by splicing the envelope text in, so the envelope stays byte-identical.
 */
export function encodeUnackedEntry(envelope: string, exchange: string, routingKey: string): string {
  return `[${envelope}, ${JSON.stringify(exchange)}, ${JSON.stringify(routingKey)}]`;
}

/** One entry of kombu's `unacked` hash, split into its parts. */
export interface UnackedEntry {
  /**
   * The envelope, JSON text. Re-serialised from the parsed entry, so equal in content but not
   * byte for byte (Python's spacing and escapes are not kept), as when kombu restores it.
   */
  readonly envelope: string;
  readonly exchange: string;
  readonly routingKey: string;
}

/**
 * Reads an `unacked` hash value written by kombu or by us.
 *
 * @returns the entry, or `null` when the value is not `[envelope, exchange, routing_key]`
 */
export function decodeUnackedEntry(raw: string): UnackedEntry | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // A corrupt hash value is reported as null; the caller dead-letters the raw text.
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) return null;
  const [envelope, exchange, routingKey] = parsed as [unknown, unknown, unknown];
  if (!isPlainObject(envelope) || typeof exchange !== 'string' || typeof routingKey !== 'string') {
    return null;
  }
  return { envelope: JSON.stringify(envelope), exchange, routingKey };
}
