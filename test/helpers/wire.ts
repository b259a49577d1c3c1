/**
 * Factories for messages as other producers write them (Python Celery, hand-made defects), framed
 * for Redis or AMQP, with overridable defaults.
 */
import type { AmqpDelivery, AmqpEncoded } from '../../src/core/amqp-codec.js';
import { CONTENT_ENCODING, CONTENT_TYPE } from '../../src/core/wire.js';

/** Defaults of the factories below: Celery's names from the fixtures. */
export const WIRE_DEFAULTS = {
  task: 'sentry.tasks.do_work',
  id: '320e7393-e02a-4c79-84fe-2eb404b895c0',
  queue: 'important_queue',
} as const;

/** The empty embed as Python's `json.dumps` writes it. */
export const PYTHON_EMBED_JSON =
  '{"callbacks": null, "errbacks": null, "chain": null, "chord": null}';

/** A message before transport framing. */
export interface WireParts {
  /** @defaultValue {@link pythonHeaders}() */
  readonly headers?: Record<string, unknown>;
  readonly body: string;
  /** `null` leaves the content type out. @defaultValue application/json */
  readonly contentType?: string | null;
}

/** Celery 5.2's headers for a plain task, with `overrides` applied (`undefined` removes a key). */
export function pythonHeaders(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const { task, id } = WIRE_DEFAULTS;
  const headers: Record<string, unknown> = {
    lang: 'py',
    task,
    id,
    shadow: null,
    eta: null,
    expires: null,
    group: null,
    group_index: null,
    retries: 0,
    timelimit: [null, null],
    root_id: id,
    parent_id: null,
    argsrepr: '[]',
    kwargsrepr: '{}',
    origin: 'gen1@host',
    ignore_result: false,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== undefined));
}

function contentTypeOf(parts: WireParts): string | null {
  return parts.contentType === undefined ? CONTENT_TYPE : parts.contentType;
}

/** A kombu Redis envelope around `parts`; `bodyEncoding: null` sends the body as raw JSON. */
export function redisEnvelope(parts: WireParts, bodyEncoding: string | null = 'base64'): string {
  const contentType = contentTypeOf(parts);
  return JSON.stringify({
    body: bodyEncoding === 'base64' ? Buffer.from(parts.body).toString('base64') : parts.body,
    'content-encoding': CONTENT_ENCODING,
    ...(contentType === null ? {} : { 'content-type': contentType }),
    headers: parts.headers ?? pythonHeaders(),
    properties: {
      correlation_id: WIRE_DEFAULTS.id,
      delivery_mode: 2,
      delivery_info: { exchange: '', routing_key: WIRE_DEFAULTS.queue },
      priority: 0,
      ...(bodyEncoding === null ? {} : { body_encoding: bodyEncoding }),
      delivery_tag: 'a0a0a0a0-0000-4000-8000-000000000000',
    },
  });
}

/** A Redis envelope with its `body` field replaced by `body` as is (not base64-encoded). */
export function replaceEnvelopeBody(envelope: string, body: string): string {
  return JSON.stringify({ ...JSON.parse(envelope), body });
}

/** The delivery amqplib would hand a consumer for `parts`, on the default exchange. */
export function amqpDelivery(parts: WireParts): AmqpDelivery {
  const contentType = contentTypeOf(parts);
  return {
    content: Buffer.from(parts.body),
    fields: { exchange: '', routingKey: WIRE_DEFAULTS.queue, redelivered: false },
    properties: {
      headers: parts.headers ?? pythonHeaders(),
      contentEncoding: CONTENT_ENCODING,
      priority: 0,
      ...(contentType === null ? {} : { contentType }),
    },
  };
}

/**
 * The delivery of a message we encoded, as published to the default exchange. The headers keep
 * their `{'!': 'int'}` wrappers, which the decoder must unwrap.
 */
export function amqpDeliveryFromPublish(
  encoded: AmqpEncoded,
  routingKey: string = WIRE_DEFAULTS.queue,
): AmqpDelivery {
  return {
    content: encoded.content,
    fields: { exchange: '', routingKey, redelivered: false },
    properties: encoded.options,
  };
}
