/**
 * Loads the captures of real Celery in `../shared/fixtures/celery/` (layout in its README.md) and
 * turns an AMQP capture into the delivery amqplib would hand the consumer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AmqpDelivery } from '../../src/core/amqp-codec.js';

/** The folder of Celery wire captures, shared with the Python interop tools. */
export const CELERY_FIXTURES_DIR = path.resolve(
  import.meta.dirname,
  '../../../shared/fixtures/celery',
);

/** Keys every fixture file has. */
export interface CeleryFixture {
  /** `<broker>-<case>`, the file name without `.json`. */
  readonly case: string;
  readonly broker: 'redis' | 'amqp';
  /** The Celery call or worker action that produced the capture. */
  readonly produced_by: string;
  readonly notes: string;
}

/** The body Celery writes: `[args, kwargs, embed]`. */
export type CeleryBody = [args: unknown[], kwargs: Record<string, unknown>, embed: unknown];

/** A kombu Redis envelope as captured, plus its parts. */
export interface RedisEnvelopeCapture {
  /** The exact string stored in Redis: the test input. */
  readonly raw: string;
  readonly headers: Record<string, unknown>;
  readonly properties: Record<string, unknown>;
  readonly content_type: string;
  readonly content_encoding: string;
  /** base64 of the body. */
  readonly body: string;
  readonly body_decoded: CeleryBody;
}

/** A message fixture taken off a Redis list (`redis_key` absent when taken from `unacked`). */
export interface RedisMessageFixture extends CeleryFixture {
  readonly broker: 'redis';
  readonly message: RedisEnvelopeCapture & {
    readonly redis_key?: string;
    readonly priority_step?: number;
  };
}

/** A message fixture taken off RabbitMQ with `basic.get`. */
export interface AmqpMessageFixture extends CeleryFixture {
  readonly broker: 'amqp';
  readonly message: {
    readonly delivery_info: {
      readonly exchange: string;
      readonly routing_key: string;
      readonly redelivered: boolean;
    };
    /** AMQP basic properties as py-amqp decoded them (snake_case). */
    readonly properties: {
      readonly content_type: string;
      readonly content_encoding: string;
      readonly priority: number;
      readonly correlation_id: string;
      readonly reply_to?: string;
      readonly expiration?: string;
    };
    readonly headers: Record<string, unknown>;
    /** The same headers with the AMQP field type tag of every value. */
    readonly header_types: Record<string, { readonly type: string; readonly value: unknown }>;
    /** The body exactly as sent: JSON text. */
    readonly body_raw: string;
    readonly body_decoded: CeleryBody;
  };
}

/** Either kind of message fixture. */
export type MessageFixture = RedisMessageFixture | AmqpMessageFixture;

/** `redis-unacked-entry`: kombu's ack-emulation hash and zset while a worker held two messages. */
export interface RedisUnackedFixture extends CeleryFixture {
  /** Hash field (delivery tag) → the captured value and its parts. */
  readonly unacked: Record<
    string,
    {
      readonly raw: string;
      readonly exchange: string;
      readonly routing_key: string;
      readonly message: RedisEnvelopeCapture;
    }
  >;
  /** `ZRANGE unacked_index 0 -1 WITHSCORES`: `[delivery tag, unix seconds]`. */
  readonly unacked_index: [tag: string, score: number][];
}

/** `redis-topology`: the keys an idle worker leaves. */
export interface RedisTopologyFixture extends CeleryFixture {
  readonly keys: Record<string, { readonly type: string; readonly members: string[] }>;
}

/** `amqp-topology`: what an idle worker declared in its vhost. */
export interface AmqpTopologyFixture extends CeleryFixture {
  readonly exchanges: {
    readonly name: string;
    readonly type: string;
    readonly durable: boolean;
    readonly auto_delete: boolean;
    readonly arguments: unknown[];
  }[];
  readonly queues: {
    readonly name: string;
    readonly durable: boolean;
    readonly auto_delete: boolean;
    readonly exclusive: boolean;
    readonly arguments: unknown[];
  }[];
  readonly bindings: {
    readonly source_name: string;
    readonly destination_name: string;
    readonly destination_kind: string;
    readonly routing_key: string;
  }[];
}

/** `redis-result-backend`: `GET celery-task-meta-<id>` after a success, a failure, an ignored result. */
export interface RedisResultBackendFixture extends CeleryFixture {
  readonly results: Record<
    string,
    { readonly key: string; readonly ttl_seconds: number; readonly raw: string | null }
  >;
}

/** Names (file names without `.json`) of every fixture in the folder, sorted. */
export function listCeleryFixtures(): string[] {
  return readdirSync(CELERY_FIXTURES_DIR)
    .filter((file) => file.endsWith('.json'))
    .map((file) => file.slice(0, -'.json'.length))
    .sort();
}

/**
 * Reads one fixture. The type parameter states which kind the caller expects; the checks below
 * only catch a name/kind mix-up, not a schema change.
 *
 * @throws Error when the file names another case than its file name
 */
export function loadCeleryFixture<T extends CeleryFixture = CeleryFixture>(name: string): T {
  const text = readFileSync(path.join(CELERY_FIXTURES_DIR, `${name}.json`), 'utf8');
  const fixture = JSON.parse(text) as T;
  if (fixture.case !== name) throw new Error(`fixture ${name}.json says it is ${fixture.case}`);
  return fixture;
}

/** True when the fixture holds one captured task message. */
export function isMessageFixture(fixture: CeleryFixture): fixture is MessageFixture {
  return 'message' in fixture;
}

/**
 * The delivery amqplib would hand a consumer for a captured AMQP message: content from
 * `body_raw`, properties from the captured properties and headers, fields from `delivery_info`.
 */
export function amqpDeliveryFromFixture(fixture: AmqpMessageFixture): AmqpDelivery {
  const { message } = fixture;
  return {
    content: Buffer.from(message.body_raw, 'utf8'),
    fields: {
      exchange: message.delivery_info.exchange,
      routingKey: message.delivery_info.routing_key,
      redelivered: message.delivery_info.redelivered,
    },
    properties: {
      headers: message.headers,
      contentType: message.properties.content_type,
      contentEncoding: message.properties.content_encoding,
      priority: message.properties.priority,
      replyTo: message.properties.reply_to,
    },
  };
}
