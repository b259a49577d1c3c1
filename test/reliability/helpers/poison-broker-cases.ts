/**
 * Poison cases only one broker can carry: defects of kombu's Redis envelope (pushed as the raw
 * list element), and raw bytes and AMQP field types a JSON envelope cannot hold (published with
 * amqplib as they are).
 */
import {
  type AmqpRaw,
  bodyOf,
  type CaseContext,
  headersFor,
  invalid,
  POISON_TASK,
  type PoisonCase,
  RUNS,
  SECRET,
} from './poison-cases.js';

/** The properties kombu's Redis transport needs, routed to `queue`. */
function properties(ctx: CaseContext, extra: Record<string, unknown> = {}) {
  return {
    correlation_id: ctx.id,
    delivery_mode: 2,
    delivery_info: { exchange: '', routing_key: ctx.queue },
    priority: 0,
    body_encoding: 'base64',
    delivery_tag: crypto.randomUUID(),
    ...extra,
  };
}

/** A kombu envelope around a good body, with `edit` applied; `case` carries the marker. */
function envelope(ctx: CaseContext, edit: (envelope: Record<string, unknown>) => void): string {
  const value: Record<string, unknown> = {
    body: Buffer.from(bodyOf([SECRET], { n: 1 })).toString('base64'),
    'content-encoding': 'utf-8',
    'content-type': 'application/json',
    headers: headersFor(ctx),
    properties: properties(ctx),
    case: ctx.marker,
  };
  edit(value);
  return JSON.stringify(value);
}

/** Cases only Redis can carry: defects of kombu's envelope. Each builds the raw list element. */
export const REDIS_CASES: PoisonCase<string>[] = [
  {
    name: 'envelope is not JSON',
    expect: invalid('envelope is not a JSON object'),
    build: (ctx) => `{"body": "${SECRET}" ${ctx.marker}`,
  },
  {
    name: 'envelope is a JSON array',
    // cjson reads arrays and objects into the same Lua table: it is told apart by what it lacks.
    expect: invalid('envelope lacks properties.delivery_tag or properties.delivery_info'),
    build: (ctx) => JSON.stringify([ctx.marker, SECRET]),
  },
  {
    name: 'envelope is a JSON string',
    expect: invalid('envelope is not a JSON object'),
    build: (ctx) => JSON.stringify(`${ctx.marker} ${SECRET}`),
  },
  {
    name: 'envelope nested deeper than cjson reads',
    expect: invalid('envelope is not a JSON object'),
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.headers = {
          ...headersFor(ctx),
          deep: JSON.parse(`${'['.repeat(1500)}${']'.repeat(1500)}`),
        };
      }),
  },
  {
    name: 'no delivery_tag',
    expect: invalid('envelope lacks properties.delivery_tag or properties.delivery_info'),
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.properties = { ...properties(ctx), delivery_tag: undefined };
      }),
  },
  {
    name: 'no delivery_info',
    expect: invalid('envelope lacks properties.delivery_tag or properties.delivery_info'),
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.properties = { ...properties(ctx), delivery_info: undefined };
      }),
  },
  {
    name: 'delivery_tag is a number',
    expect: invalid('envelope lacks properties.delivery_tag or properties.delivery_info'),
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.properties = properties(ctx, { delivery_tag: 7 });
      }),
  },
  {
    name: 'no properties',
    expect: invalid('envelope lacks properties.delivery_tag or properties.delivery_info'),
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.properties = undefined;
      }),
  },
  {
    name: 'base64 garbage body',
    expect: invalid('(malformed-envelope): body is not valid base64'),
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.body = `!!${SECRET}!!`;
      }),
  },
  {
    name: 'unknown body_encoding',
    expect: invalid('(malformed-envelope): unknown body_encoding "hex"'),
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.body = Buffer.from(bodyOf([SECRET], { n: 1 })).toString('hex');
        value.properties = properties(ctx, { body_encoding: 'hex' });
      }),
  },
  {
    name: 'body is not a string',
    expect: invalid('(malformed-envelope): envelope has no string body'),
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.body = [[SECRET], { n: 1 }, null];
      }),
  },
  {
    name: 'headers is a string',
    expect: invalid('(missing-header): no task header'),
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.headers = `task=${POISON_TASK}`;
      }),
  },
  {
    name: 'body bytes are not UTF-8',
    expect: invalid('(unsupported-encoding): body is not valid UTF-8'),
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.body = Buffer.from(bodyOf([`caf\u00e9 ${SECRET}`], { n: 1 }), 'latin1').toString(
          'base64',
        );
      }),
  },
  {
    name: 'raw JSON body without body_encoding',
    expect: RUNS,
    build: (ctx) =>
      envelope(ctx, (value) => {
        value.body = '[[], {"n": 1}, null]';
        value.properties = properties(ctx, { body_encoding: undefined });
      }),
  },
];

/** Publish options of a plain AMQP message of the poison task, with `headers` overrides. */
function amqpPlain(ctx: CaseContext, overrides: Record<string, unknown>): AmqpRaw {
  return {
    content: Buffer.from(bodyOf([SECRET], { n: 1, token: SECRET })),
    options: {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      correlationId: ctx.marker,
      deliveryMode: 2,
      headers: headersFor(ctx, overrides),
    },
  };
}

/** Cases only AMQP can carry: raw bytes and AMQP field types a JSON envelope cannot hold. */
export const AMQP_CASES: PoisonCase<AmqpRaw>[] = [
  {
    name: 'body bytes are not UTF-8',
    expect: invalid('(unsupported-encoding): body is not valid UTF-8'),
    build: (ctx) => ({
      ...amqpPlain(ctx, {}),
      content: Buffer.from(bodyOf([`caf\u00e9 ${SECRET}`], { n: 1 }), 'latin1'),
    }),
  },
  {
    name: 'retries as an AMQP double',
    expect: invalid('(invalid-header): retries must be a non-negative integer'),
    build: (ctx) => amqpPlain(ctx, { retries: { '!': 'double', value: 1.5 } }),
  },
  {
    name: 'retries as an AMQP decimal',
    expect: invalid('(invalid-header): retries must be a non-negative integer'),
    build: (ctx) =>
      amqpPlain(ctx, { retries: { '!': 'decimal', value: { places: 1, digits: 15 } } }),
  },
  {
    name: 'id as an AMQP byte array',
    expect: invalid('(invalid-header): id must be a non-empty string'),
    build: (ctx) => amqpPlain(ctx, { id: Buffer.from(ctx.id) }),
  },
  {
    name: 'eta as an AMQP timestamp',
    expect: invalid('(invalid-header): eta must be a string or null'),
    build: (ctx) => amqpPlain(ctx, { eta: { '!': 'timestamp', value: 1_700_000_000 } }),
  },
  {
    name: 'timelimit as an AMQP table',
    expect: invalid('(invalid-header): timelimit must be [hard, soft]'),
    build: (ctx) => amqpPlain(ctx, { timelimit: { hard: 30, soft: 20 } }),
  },
  {
    name: 'task as an AMQP boolean',
    expect: invalid('(invalid-header): task must be a non-empty string'),
    build: (ctx) => amqpPlain(ctx, { task: true }),
  },
  {
    name: 'group_index as an AMQP float',
    expect: invalid('(invalid-header): group_index must be an integer'),
    build: (ctx) => amqpPlain(ctx, { group_index: { '!': 'float', value: 2.5 } }),
  },
  {
    name: 'no properties at all',
    expect: invalid('(unsupported-content-type): no content-type'),
    build: (ctx) => ({
      content: Buffer.from(bodyOf([SECRET], { n: 1 })),
      options: { correlationId: ctx.marker },
    }),
  },
  {
    name: 'retries as a 64-bit long and timelimit as 32-bit ints',
    expect: RUNS,
    build: (ctx) =>
      amqpPlain(ctx, {
        retries: { '!': 'long', value: 0 },
        timelimit: [
          { '!': 'int', value: 30 },
          { '!': 'int', value: 20 },
        ],
      }),
  },
];
