/**
 * Our encoders against our decoders on both transports, the header shapes Celery needs, and what
 * the decoder refuses or accepts from producers that are not us.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeAmqpMessage,
  encodeAmqpMessage,
  typeAmqpHeaderValue,
} from '../../../src/core/amqp-codec.js';
import { INVALID_MESSAGE_REASONS } from '../../../src/core/errors.js';
import {
  createRetryMessage,
  createTaskMessage,
  type TaskCall,
  type TaskMessage,
} from '../../../src/core/message.js';
import { decodeRedisMessage, encodeRedisMessage } from '../../../src/core/redis-codec.js';
import type { DecodeResult } from '../../../src/core/wire.js';
import { expectDecoded, expectDecodeFailure } from '../../helpers/decode.js';
import {
  type AmqpMessageFixture,
  amqpDeliveryFromFixture,
  loadCeleryFixture,
  type RedisMessageFixture,
} from '../../helpers/fixtures.js';
import {
  amqpDelivery,
  amqpDeliveryFromPublish,
  PYTHON_EMBED_JSON,
  pythonHeaders,
  redisEnvelope,
  replaceEnvelopeBody,
  WIRE_DEFAULTS,
  type WireParts,
} from '../../helpers/wire.js';

const NOW = new Date('2030-01-02T03:04:05.000Z');
const { queue: QUEUE, task: TASK, id: ID } = WIRE_DEFAULTS;

/** The headers Celery 5.2 writes on every task message, in its order (spec §1.1). */
const CELERY_HEADER_ORDER = [
  'lang',
  'task',
  'id',
  'shadow',
  'eta',
  'expires',
  'group',
  'group_index',
  'retries',
  'timelimit',
  'root_id',
  'parent_id',
  'argsrepr',
  'kwargsrepr',
  'origin',
  'ignore_result',
];

/** Encodes with one transport's encoder and decodes with its decoder. */
const TRANSPORTS = {
  redis: {
    roundTrip: (message: TaskMessage) =>
      decodeRedisMessage(encodeRedisMessage(message, { now: NOW }).envelope),
    headers: (message: TaskMessage): Record<string, unknown> =>
      JSON.parse(encodeRedisMessage(message, { now: NOW }).envelope).headers,
  },
  amqp: {
    roundTrip: (message: TaskMessage) =>
      decodeAmqpMessage(amqpDeliveryFromPublish(encodeAmqpMessage(message, NOW))),
    headers: (message: TaskMessage) => encodeAmqpMessage(message, NOW).options.headers,
  },
};
const TRANSPORT_NAMES = Object.keys(TRANSPORTS) as (keyof typeof TRANSPORTS)[];

const CALLS: [string, TaskCall][] = [
  ['a plain call', { task: TASK, queue: QUEUE, args: [1, 'two', { three: 3 }], kwargs: { a: 1 } }],
  [
    'a call with every option',
    {
      task: TASK,
      queue: QUEUE,
      id: ID,
      args: ['é', null, [true, 1.5]],
      kwargs: { user_id: 42, tags: ['a', 'b'] },
      countdown: 60,
      expires: 3600,
      priority: 7,
      timeLimit: [300, 200],
      parentId: 'b9d3a5d4-9b1c-4e39-a45e-0c6f0d3c2a11',
      rootId: 'a3f1c2e4-5b6d-4e7f-8a9b-0c1d2e3f4a5b',
      shadow: 'sentry.tasks.alias',
      ignoreResult: true,
      embed: { callbacks: [{ task: 'next' }], errbacks: null, chain: null, chord: null },
    },
  ],
];

const TRANSPORT_DECODERS: Record<keyof typeof TRANSPORTS, (parts: WireParts) => DecodeResult> = {
  redis: (parts) => decodeRedisMessage(redisEnvelope(parts)),
  amqp: (parts) => decodeAmqpMessage(amqpDelivery(parts)),
};

describe.each(TRANSPORT_NAMES)('the %s codec', (transport) => {
  const { roundTrip, headers } = TRANSPORTS[transport];

  it.each(CALLS)('gives back every field of %s', (_, call) => {
    // Prepare
    const message = createTaskMessage(call, NOW);

    // Act
    const decoded = expectDecoded(roundTrip(message));

    // Assess
    const body = JSON.stringify([message.args, message.kwargs, message.embed]);
    expect(decoded).toEqual({ ...message, rawBody: body });
  });

  it('writes all 16 Celery headers in Celery order', () => {
    // Prepare
    const message = createTaskMessage({ task: TASK, queue: QUEUE }, NOW);

    // Act
    const keys = Object.keys(headers(message));

    // Assess
    expect(keys).toEqual(CELERY_HEADER_ORDER);
  });

  it('keeps unknown headers after the Celery ones, and lets a modelled header win', () => {
    // Prepare
    const message: TaskMessage = {
      ...createTaskMessage({ task: TASK, queue: QUEUE, id: ID }, NOW),
      extraHeaders: { stamped_headers: ['on'], stamps: { on: 'x' }, id: 'not-the-id' },
    };

    // Act
    const written = headers(message);

    // Assess
    expect(Object.keys(written)).toEqual([...CELERY_HEADER_ORDER, 'stamped_headers', 'stamps']);
    expect(written.id).toBe(ID);
  });

  it('keeps the redelivered mark of a message that is queued again (parked until its eta)', () => {
    // Prepare
    const message = { ...createTaskMessage({ task: TASK, queue: QUEUE }, NOW), redelivered: true };

    // Act
    const decoded = expectDecoded(roundTrip(message));

    // Assess
    expect(decoded.redelivered).toBe(true);
    expect(headers(message).redelivered).toBe(true);
    expect(headers({ ...message, redelivered: false })).not.toHaveProperty('redelivered');
  });
});

describe('AMQP header types', () => {
  /** Paths of numbers amqplib would type by size (`b`/`s`), which py-amqp misreads. */
  function untypedNumbers(value: unknown, path: string): string[] {
    if (typeof value === 'number') return [path];
    if (Array.isArray(value))
      return value.flatMap((item, i) => untypedNumbers(item, `${path}[${i}]`));
    if (typeof value !== 'object' || value === null || '!' in value) return [];
    return Object.entries(value).flatMap(([key, item]) => untypedNumbers(item, `${path}.${key}`));
  }

  it('types every integer header, inside timelimit too, as a 32-bit int', () => {
    // Prepare
    const message = {
      ...createTaskMessage({ task: TASK, queue: QUEUE, timeLimit: [300, 200] }, NOW),
      retries: 2,
      groupIndex: 4,
      extraHeaders: { replaced_task_nesting: 0, stamps: { depth: 1 } },
    };

    // Act
    const { headers } = encodeAmqpMessage(message, NOW).options;

    // Assess
    expect(untypedNumbers(headers, 'headers')).toEqual([]);
    expect(headers).toMatchObject({
      retries: { '!': 'int', value: 2 },
      group_index: { '!': 'int', value: 4 },
      timelimit: [
        { '!': 'int', value: 300 },
        { '!': 'int', value: 200 },
      ],
      replaced_task_nesting: { '!': 'int', value: 0 },
      stamps: { depth: { '!': 'int', value: 1 } },
    });
  });

  it.each([
    [0, 'int'],
    [-(2 ** 31), 'int'],
    [2 ** 31 - 1, 'int'],
    [2 ** 31, 'long'],
    [1.5, 'double'],
  ])('types the number %d as %s', (value, type) => {
    // Prepare
    const header = { n: value };

    // Act
    const typed = typeAmqpHeaderValue(header);

    // Assess
    expect(typed).toEqual({ n: { '!': type, value } });
  });
});

describe('times and delays on the wire', () => {
  it.each([
    ['one hour from now', 3600, NOW, '3600000'],
    ['one hour from a publish 1.5 s later', 3600, new Date(NOW.getTime() + 1500), '3598500'],
    ['already past', new Date(NOW.getTime() - 5000), NOW, '0'],
  ])('sets expiration for expires %s', (_, expires, publishedAt, expiration) => {
    // Prepare
    const message = createTaskMessage({ task: TASK, queue: QUEUE, expires }, NOW);

    // Act
    const amqp = encodeAmqpMessage(message, publishedAt);
    const redis = JSON.parse(encodeRedisMessage(message, { now: publishedAt }).envelope);

    // Assess
    expect(amqp.options.expiration).toBe(expiration);
    expect(redis.properties.expiration).toBe(expiration);
  });

  it('sets no expiration when the message does not expire', () => {
    // Prepare
    const message = createTaskMessage({ task: TASK, queue: QUEUE }, NOW);

    // Act
    const amqp = encodeAmqpMessage(message, NOW);
    const redis = JSON.parse(encodeRedisMessage(message, { now: NOW }).envelope);

    // Assess
    expect(amqp.options).not.toHaveProperty('expiration');
    expect(redis.properties).not.toHaveProperty('expiration');
  });

  it('turns a countdown into an absolute eta and never writes the countdown', () => {
    // Prepare
    const call = { task: TASK, queue: QUEUE, countdown: 60 };

    // Act
    const message = createTaskMessage(call, NOW);
    const headers = TRANSPORTS.redis.headers(message);

    // Assess
    expect(message.eta).toEqual(new Date('2030-01-02T03:05:05.000Z'));
    expect(headers.eta).toBe('2030-01-02T03:05:05+00:00');
    expect(headers).not.toHaveProperty('countdown');
  });

  it('lets an absolute eta win over a countdown', () => {
    // Prepare
    const eta = new Date('2031-01-01T00:00:00.000Z');

    // Act
    const message = createTaskMessage({ task: TASK, queue: QUEUE, eta, countdown: 60 }, NOW);

    // Assess
    expect(message.eta).toEqual(eta);
  });
});

describe('retry messages', () => {
  const RETRY_ETA = new Date('2030-01-02T04:04:05.000Z');

  it('keeps id and root, points parent at the task itself and counts one more retry', () => {
    // Prepare
    const original = createTaskMessage({ task: TASK, queue: QUEUE, priority: 3 }, NOW);

    // Act
    const retry = createRetryMessage({ ...original, retries: 2 }, RETRY_ETA);

    // Assess
    expect(retry).toMatchObject({
      id: original.id,
      rootId: original.id,
      parentId: original.id,
      retries: 3,
      eta: RETRY_ETA,
      priority: 3,
      routingKey: QUEUE,
      redelivered: false,
    });
  });

  it('re-sends the body of a Python message byte for byte on Redis', () => {
    // Prepare
    const fixture = loadCeleryFixture<RedisMessageFixture>('redis-plain');
    const received = expectDecoded(decodeRedisMessage(fixture.message.raw));

    // Act
    const retry = createRetryMessage(received, RETRY_ETA);
    const envelope = JSON.parse(encodeRedisMessage(retry, { now: NOW }).envelope);

    // Assess
    expect(retry.rawBody).toBe(received.rawBody);
    expect(envelope.body).toBe(fixture.message.body);
  });

  it('re-sends the body of a Python message byte for byte on AMQP', () => {
    // Prepare
    const fixture = loadCeleryFixture<AmqpMessageFixture>('amqp-plain');
    const received = expectDecoded(decodeAmqpMessage(amqpDeliveryFromFixture(fixture)));

    // Act
    const retry = createRetryMessage(received, RETRY_ETA);
    const { content } = encodeAmqpMessage(retry, NOW);

    // Assess
    expect(content.toString('utf8')).toBe(fixture.message.body_raw);
  });

  it('re-sends a body holding bare NaN as Python wrote it', () => {
    // Prepare
    const body = `[[NaN], {}, ${PYTHON_EMBED_JSON}]`;
    const received = expectDecoded(TRANSPORT_DECODERS.amqp({ body }));

    // Act
    const { content } = encodeAmqpMessage(createRetryMessage(received, RETRY_ETA), NOW);

    // Assess
    expect(content.toString('utf8')).toBe(body);
  });

  it('re-serialises a protocol v1 body as a v2 [args, kwargs, embed] body', () => {
    // Prepare
    const body = JSON.stringify({ task: TASK, id: ID, args: [1], kwargs: { a: 2 } });
    const received = expectDecoded(TRANSPORT_DECODERS.redis({ headers: {}, body }));

    // Act
    const retry = createRetryMessage(received, RETRY_ETA);
    const decoded = expectDecoded(TRANSPORTS.redis.roundTrip(retry));

    // Assess
    expect(retry.protocol).toBe(2);
    expect(decoded).toMatchObject({ protocol: 2, id: ID, args: [1], kwargs: { a: 2 }, retries: 1 });
  });
});

const R = INVALID_MESSAGE_REASONS;
const BODY = `[[1], {}, ${PYTHON_EMBED_JSON}]`;
/** A plain body under Celery's headers with `overrides`. */
const withHeaders = (overrides: Record<string, unknown>): WireParts => ({
  headers: pythonHeaders(overrides),
  body: BODY,
});
/** A plain body and headers under another content type (`null`: none). */
const withContentType = (contentType: string | null): WireParts => ({ body: BODY, contentType });

const REFUSED: [string, WireParts, string, RegExp][] = [
  ['a two-item body', { body: '[[1], {}]' }, R.malformedBody, /\[args, kwargs, embed\].*2 items/],
  ['no content type', withContentType(null), R.unsupportedContentType, /content-type/],
  [
    'pickle',
    withContentType('application/x-python-serialize'),
    R.unsupportedContentType,
    /python-serialize/,
  ],
  ['yaml', withContentType('application/x-yaml'), R.unsupportedContentType, /yaml/],
  ['msgpack', withContentType('application/x-msgpack'), R.unsupportedContentType, /msgpack/],
  [
    'no task header and a body that is not v1',
    withHeaders({ task: undefined }),
    R.missingHeader,
    /task/,
  ],
  ['no id', withHeaders({ id: undefined }), R.missingHeader, /missing id/],
  ['a body that is not JSON', { body: '[[1], {}, nul' }, R.malformedBody, /body is not JSON/],
  ['retries as a string', withHeaders({ retries: '1' }), R.invalidHeader, /retries/],
  ['an eta that is not ISO 8601', withHeaders({ eta: 'tomorrow' }), R.invalidHeader, /eta/],
  ['an eta in month 13', withHeaders({ eta: '2030-13-02T03:04:05+00:00' }), R.invalidHeader, /eta/],
  ['a timelimit of one item', withHeaders({ timelimit: [30] }), R.invalidHeader, /timelimit/],
  [
    'a timelimit that is a string',
    withHeaders({ timelimit: '30,20' }),
    R.invalidHeader,
    /timelimit/,
  ],
  [
    'a compressed body',
    withHeaders({ compression: 'application/x-gzip' }),
    R.unsupportedEncoding,
    /compress/,
  ],
  [
    'an unknown kombu type tag',
    { body: `[[{"__type__": "set", "__value__": [1]}], {}, ${PYTHON_EMBED_JSON}]` },
    R.malformedBody,
    /tagged value.*"set"/,
  ],
];

describe.each(TRANSPORT_NAMES)('decoding refuses, over %s,', (transport) => {
  const decode = TRANSPORT_DECODERS[transport];

  it.each(REFUSED)('%s with a typed reason naming the field', (_, parts, reason, detail) => {
    // Prepare
    const headers = parts.headers ?? pythonHeaders();

    // Act
    const failure = expectDecodeFailure(decode(parts));

    // Assess
    expect(failure.error).toMatchObject({ reason, code: 'INVALID_MESSAGE' });
    expect(failure.error.message).toMatch(detail);
    expect(failure.id).toBe(headers.id ?? null);
  });
});

describe('decoding refuses a broken Redis envelope', () => {
  it.each([
    [
      'a body that is not base64',
      replaceEnvelopeBody(redisEnvelope({ body: BODY }), '!!!no!!!'),
      /base64/,
    ],
    ['an envelope that is not JSON', '{"body": "W10=", ', /envelope is not JSON/],
    ['an envelope that is a JSON array', '[1, 2]', /not a JSON object/],
  ])('with %s', (_, raw, detail) => {
    // Prepare
    const envelope = raw;

    // Act
    const failure = expectDecodeFailure(decodeRedisMessage(envelope));

    // Assess
    expect(failure.error.reason).toBe(R.malformedEnvelope);
    expect(failure.error.message).toMatch(detail);
  });
});

const V1_BODY = {
  task: TASK,
  id: ID,
  args: [1],
  kwargs: { a: 2 },
  retries: 2,
  eta: '2030-01-02T03:04:05+00:00',
  expires: null,
};
const TAGGED_ARGS = [
  { __type__: 'datetime', __value__: '2024-05-06T07:08:09.123456+00:00' },
  { __type__: 'decimal', __value__: '12.50' },
  { __type__: 'uuid', __value__: { hex: '12345678123456781234567812345678' } },
  { __type__: 'bytes', __value__: 'raw text' },
];

const ACCEPTED: [string, WireParts, Partial<TaskMessage>][] = [
  [
    'a protocol v1 JSON body',
    { headers: {}, body: JSON.stringify(V1_BODY) },
    {
      protocol: 1,
      task: TASK,
      id: ID,
      rootId: ID,
      args: [1],
      kwargs: { a: 2 },
      retries: 2,
      eta: NOW,
    },
  ],
  [
    'kombu 5.3 tagged values, as plain strings',
    {
      body: JSON.stringify([
        TAGGED_ARGS,
        { when: { __type__: 'date', __value__: '2024-05-06' } },
        null,
      ]),
    },
    {
      args: [
        '2024-05-06T07:08:09.123456+00:00',
        '12.50',
        '12345678-1234-5678-1234-567812345678',
        'raw text',
      ],
      kwargs: { when: '2024-05-06' },
    },
  ],
  [
    'bare NaN and Infinity in the body',
    { body: `[[NaN, Infinity, -Infinity], {"x": NaN}, ${PYTHON_EMBED_JSON}]` },
    {
      args: [Number.NaN, Number.POSITIVE_INFINITY, -Number.POSITIVE_INFINITY],
      kwargs: { x: Number.NaN },
    },
  ],
  ['an eta ending in Z', withHeaders({ eta: '2030-01-02T03:04:05Z' }), { eta: NOW }],
  ['a naive eta, read as UTC', withHeaders({ eta: '2030-01-02T03:04:05' }), { eta: NOW }],
  [
    'the minimal message a Celery worker runs',
    { headers: { task: TASK, id: ID }, body: '[[1], {}, {}]' },
    {
      retries: 0,
      rootId: null,
      timeLimit: [null, null],
      embed: { callbacks: null, errbacks: null, chain: null, chord: null },
    },
  ],
];

describe.each(TRANSPORT_NAMES)('decoding accepts, over %s,', (transport) => {
  const decode = TRANSPORT_DECODERS[transport];

  it.each(ACCEPTED)('%s', (_, parts, expected) => {
    // Prepare
    const delivery = parts;

    // Act
    const message = expectDecoded(decode(delivery));

    // Assess
    expect(message).toMatchObject(expected);
  });

  it('headers of later Celery versions, and writes them back on retry', () => {
    // Prepare
    const extras = { stamped_headers: ['on'], stamps: { on: 'x' }, replaced_task_nesting: 0 };
    const received = expectDecoded(decode(withHeaders(extras)));

    // Act
    const written = TRANSPORTS[transport].headers(createRetryMessage(received, NOW));

    // Assess
    expect(received.extraHeaders).toEqual(extras);
    expect(written).toMatchObject(
      transport === 'amqp'
        ? { ...extras, replaced_task_nesting: { '!': 'int', value: 0 } }
        : extras,
    );
  });
});

describe('decoding accepts', () => {
  it('a Redis body sent as raw JSON, without body_encoding', () => {
    // Prepare
    const envelope = redisEnvelope({ body: `[["raw"], {}, ${PYTHON_EMBED_JSON}]` }, null);

    // Act
    const message = expectDecoded(decodeRedisMessage(envelope));

    // Assess
    expect(message).toMatchObject({ id: ID, args: ['raw'] });
  });
});
