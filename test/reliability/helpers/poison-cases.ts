/**
 * The poison table: malformed and hostile messages as foreign producers write them, each with
 * what must become of it (dead-lettered with a reason code and a fragment of its detail, parked
 * until its eta, or run once because it is odd but valid). These cases are framed for both
 * brokers; `poison-broker-cases.ts` holds those only one broker can carry.
 *
 * Every argument-bearing bad message plants {@link SECRET} in its args or kwargs: no dead-letter
 * reason may repeat it.
 */
import type { Options } from 'amqplib';
import type { DeadLetterReasonCode } from '../../../src/core/dead-letter.js';
import { PYTHON_EMBED_JSON, pythonHeaders } from '../../helpers/wire.js';

/** A value planted in arguments; it must never show up in a dead-letter reason. */
export const SECRET = 'sk_live_p0ison_planted_in_args_7731';

/** The one task the poison app registers; its kwargs schema is `{ n: number }`. */
export const POISON_TASK = 'poison.work';

/** What each case is built from. */
export interface CaseContext {
  readonly queue: string;
  /** A fresh task id (the case's own, so runs and dead letters can be traced back to it). */
  readonly id: string;
  /** Text unique to the case, carried where the dead letter keeps it (envelope, correlation id). */
  readonly marker: string;
}

/** A message before transport framing. */
export interface WireMessage {
  /** `undefined`: no headers at all. */
  readonly headers: Record<string, unknown> | undefined;
  readonly body: string | Buffer;
  /** `null`: no content type. @defaultValue application/json */
  readonly contentType?: string | null;
  /** `null`: no content encoding. @defaultValue utf-8 */
  readonly contentEncoding?: string | null;
}

/** What must become of a case's message. */
export type Expected =
  | { readonly kind: 'dead'; readonly reason: DeadLetterReasonCode; readonly detail: string }
  | { readonly kind: 'parked' }
  | { readonly kind: 'runs' };

/** One case of the table. */
export interface PoisonCase<Build> {
  readonly name: string;
  readonly expect: Expected;
  readonly build: (ctx: CaseContext) => Build;
}

/** A message as an AMQP publisher hands it to amqplib. */
export interface AmqpRaw {
  readonly content: Buffer;
  readonly options: Options.Publish;
}

const dead = (reason: DeadLetterReasonCode, detail: string): Expected => ({
  kind: 'dead',
  reason,
  detail,
});
/** A decode failure whose detail contains `detail`. */
export const invalid = (detail: string) => dead('invalid-message', detail);
/** Odd but valid: runs once. */
export const RUNS: Expected = { kind: 'runs' };

/** Celery 5.2's headers for the poison task, with `overrides` (`undefined` removes a key). */
export function headersFor(ctx: CaseContext, overrides: Record<string, unknown> = {}) {
  return pythonHeaders({ task: POISON_TASK, id: ctx.id, root_id: ctx.id, ...overrides });
}

/** `[args, kwargs, embed]` as Python's `json.dumps` would write it. */
export function bodyOf(args: unknown[], kwargs: Record<string, unknown>): string {
  return `[${JSON.stringify(args)}, ${JSON.stringify(kwargs)}, ${PYTHON_EMBED_JSON}]`;
}

/** A well-formed message of the poison task: what every good message of the stream is. */
export function goodMessage(ctx: CaseContext, n: number): WireMessage {
  return { headers: headersFor(ctx), body: bodyOf([n], { n, note: 'good' }) };
}

const v2 = (ctx: CaseContext, body: string | Buffer, overrides: Record<string, unknown> = {}) => ({
  headers: headersFor(ctx, overrides),
  body,
});
const plain = (ctx: CaseContext, overrides: Record<string, unknown>): WireMessage =>
  v2(ctx, bodyOf([SECRET], { n: 1, token: SECRET }), overrides);
const PICKLE = Buffer.concat([
  Buffer.from([0x80, 0x04, 0x95, 0x2a, 0, 0, 0, 0, 0, 0, 0, 0x5d, 0x94, 0x8c, 0x23]),
  Buffer.from(SECRET),
  Buffer.from([0x94, 0x61, 0x2e, 0xff, 0xfe]),
]);
const MSGPACK = Buffer.concat([
  Buffer.from([0x93, 0x91, 0xd9, SECRET.length]),
  Buffer.from(SECRET),
]);
const TEN_MB = 10 * 1024 * 1024;
const DEEP = 10_000;
const FAR_FUTURE = '2999-01-01T00:00:00+00:00';

/** A plain message of the poison task whose headers are wrong in one way, and what it becomes. */
const HEADER_DEFECTS: [name: string, overrides: Record<string, unknown>, expected: Expected][] = [
  ['unknown task', { task: 'poison.nope' }, dead('unknown-task', 'unregistered task: poison.nope')],
  [
    'unicode and emoji task name',
    { task: '🧪.tâche_💥' },
    dead('unknown-task', 'unregistered task: 🧪.tâche_💥'),
  ],
  ['missing id', { id: undefined }, invalid('(missing-header): missing id')],
  ['id is a number', { id: 42 }, invalid('(invalid-header): id must be a non-empty string')],
  ['empty task name', { task: '' }, invalid('(invalid-header): task must be a non-empty string')],
  ['task header is null', { task: null }, invalid('(missing-header): missing task')],
  [
    'retries "x"',
    { retries: 'x' },
    invalid('(invalid-header): retries must be a non-negative integer'),
  ],
  [
    'retries -1',
    { retries: -1 },
    invalid('(invalid-header): retries must be a non-negative integer'),
  ],
  [
    'retries 1.5',
    { retries: 1.5 },
    invalid('(invalid-header): retries must be a non-negative integer'),
  ],
  [
    'eta "tomorrow"',
    { eta: 'tomorrow' },
    invalid('(invalid-header): eta must be an ISO 8601 time'),
  ],
  [
    'eta on February 31st',
    { eta: '2024-02-31T00:00:00+00:00' },
    invalid('(invalid-header): eta must be an ISO 8601 time'),
  ],
  [
    'expires is a number',
    { expires: 3600 },
    invalid('(invalid-header): expires must be a string or null'),
  ],
  [
    'timelimit [1]',
    { timelimit: [1] },
    invalid('(invalid-header): timelimit must be [hard, soft]'),
  ],
  [
    'timelimit of strings',
    { timelimit: ['30', null] },
    invalid('(invalid-header): timelimit must be [hard, soft]'),
  ],
  [
    'ignore_result "yes"',
    { ignore_result: 'yes' },
    invalid('(invalid-header): ignore_result must be a boolean'),
  ],
  [
    'group_index 1.5',
    { group_index: 1.5 },
    invalid('(invalid-header): group_index must be an integer'),
  ],
  [
    'parent_id is a number',
    { parent_id: 42 },
    invalid('(invalid-header): parent_id must be a string or null'),
  ],
  [
    'expired',
    { expires: '2001-02-03T04:05:06+00:00' },
    dead('expired', 'expired at 2001-02-03T04:05:06.000Z'),
  ],
  ['eta far in the future', { eta: FAR_FUTURE }, { kind: 'parked' }],
];

const HEADER_CASES: PoisonCase<WireMessage>[] = HEADER_DEFECTS.map(([name, overrides, expect]) => ({
  name,
  expect,
  build: (ctx) => plain(ctx, overrides),
}));

/** Cases framed for both brokers. */
export const SHARED_CASES: PoisonCase<WireMessage>[] = [
  {
    name: 'invalid JSON',
    expect: invalid('(malformed-body): body is not JSON'),
    build: (ctx) => v2(ctx, `[["${SECRET}"], {"n": 1}, {]`),
  },
  {
    name: 'invalid JSON with a bare word',
    expect: invalid('(malformed-body): body is not JSON'),
    build: (ctx) => v2(ctx, `[[${SECRET}], {"n": 1}, null]`),
  },
  {
    name: 'empty body',
    expect: invalid('(malformed-body): body is not JSON'),
    build: (ctx) => v2(ctx, ''),
  },
  {
    name: 'body is a JSON string',
    expect: invalid('(malformed-body): body must be [args, kwargs, embed]'),
    build: (ctx) => v2(ctx, JSON.stringify(SECRET)),
  },
  {
    name: 'body is a JSON object under a v2 task header',
    expect: invalid('(malformed-body): body must be [args, kwargs, embed]'),
    build: (ctx) => v2(ctx, JSON.stringify({ args: [SECRET], kwargs: { n: 1 } })),
  },
  {
    name: 'two-item body',
    expect: invalid('(malformed-body): body must be [args, kwargs, embed], got an array of 2'),
    build: (ctx) => v2(ctx, JSON.stringify([[SECRET], { n: 1 }])),
  },
  {
    name: 'four-item body',
    expect: invalid('(malformed-body): body must be [args, kwargs, embed], got an array of 4'),
    build: (ctx) => v2(ctx, JSON.stringify([[SECRET], { n: 1 }, null, SECRET])),
  },
  {
    name: 'args is an object',
    expect: invalid('(malformed-body): args must be an array'),
    build: (ctx) => v2(ctx, bodyOf({ token: SECRET } as unknown as unknown[], { n: 1 })),
  },
  {
    name: 'kwargs is an array',
    expect: invalid('(malformed-body): kwargs must be an object'),
    build: (ctx) => v2(ctx, `[[], ${JSON.stringify([SECRET])}, null]`),
  },
  {
    name: 'embed is a string',
    expect: invalid('(malformed-body): embed must be an object or null'),
    build: (ctx) => v2(ctx, `[[], {"n": 1}, ${JSON.stringify(SECRET)}]`),
  },
  {
    name: 'embed callbacks is not a list',
    expect: invalid('(malformed-body): embed.callbacks must be a list'),
    build: (ctx) => v2(ctx, `[[], {"n": 1}, {"callbacks": ${JSON.stringify(SECRET)}}]`),
  },
  {
    name: 'pickle content',
    expect: invalid('(unsupported-content-type): content-type application/x-python-serialize'),
    build: (ctx) => ({
      ...v2(ctx, PICKLE),
      contentType: 'application/x-python-serialize',
      contentEncoding: 'binary',
    }),
  },
  {
    name: 'yaml content',
    expect: invalid('(unsupported-content-type): content-type application/x-yaml'),
    build: (ctx) => ({
      ...v2(ctx, `- [${SECRET}]\n- {n: 1}\n- null\n`),
      contentType: 'application/x-yaml',
    }),
  },
  {
    name: 'msgpack content',
    expect: invalid('(unsupported-content-type): content-type application/x-msgpack'),
    build: (ctx) => ({
      ...v2(ctx, MSGPACK),
      contentType: 'application/x-msgpack',
      contentEncoding: 'binary',
    }),
  },
  {
    name: 'no content-type',
    expect: invalid('(unsupported-content-type): no content-type'),
    build: (ctx) => ({ ...plain(ctx, {}), contentType: null }),
  },
  {
    name: 'content-encoding binary on a JSON body',
    expect: invalid('(unsupported-encoding): content-encoding binary'),
    build: (ctx) => ({ ...plain(ctx, {}), contentEncoding: 'binary' }),
  },
  {
    name: 'compression header',
    expect: invalid('(unsupported-encoding): compressed bodies'),
    build: (ctx) => plain(ctx, { compression: 'application/x-gzip' }),
  },
  {
    name: 'kombu tagged value with an unknown tag',
    expect: invalid('(malformed-body): body holds a kombu tagged value we cannot read'),
    build: (ctx) => v2(ctx, bodyOf([], { n: 1, blob: { __type__: 'pickle', __value__: SECRET } })),
  },
  {
    name: 'kombu uuid tag around a non-uuid',
    expect: invalid('(malformed-body): body holds a kombu tagged value we cannot read'),
    build: (ctx) => v2(ctx, bodyOf([], { n: 1, key: { __type__: 'uuid', __value__: SECRET } })),
  },
  ...HEADER_CASES,
  {
    name: 'no headers, v2 body',
    expect: invalid('(missing-header): no task header'),
    build: () => ({ headers: undefined, body: bodyOf([SECRET], { n: 1 }) }),
  },
  {
    name: 'v1 body without id',
    expect: invalid('(missing-header): missing id'),
    build: () => ({
      headers: undefined,
      body: JSON.stringify({ task: POISON_TASK, args: [SECRET], kwargs: { n: 1 } }),
    }),
  },
  {
    name: 'v1 body whose args is an object',
    expect: invalid('(malformed-body): args must be an array'),
    build: (ctx) => ({
      headers: undefined,
      body: JSON.stringify({ task: POISON_TASK, id: ctx.id, args: { s: SECRET }, kwargs: {} }),
    }),
  },
  {
    name: 'kwargs failing the schema',
    expect: dead('invalid-arguments', 'kwargs.n'),
    build: (ctx) => v2(ctx, bodyOf([], { n: SECRET })),
  },
  {
    name: 'required kwarg missing',
    expect: dead('invalid-arguments', 'kwargs.n'),
    build: (ctx) => v2(ctx, bodyOf([SECRET], { token: SECRET })),
  },
  {
    name: 'bare NaN for a number field',
    expect: dead('invalid-arguments', 'kwargs.n'),
    build: (ctx) => v2(ctx, `[[], {"n": NaN, "token": ${JSON.stringify(SECRET)}}, null]`),
  },
  {
    name: 'bare Infinity for a number field',
    expect: dead('invalid-arguments', 'kwargs.n'),
    build: (ctx) => v2(ctx, `[[], {"n": Infinity, "token": ${JSON.stringify(SECRET)}}, null]`),
  },
  {
    name: '10 MB body',
    expect: dead('invalid-arguments', 'over the limit of 65536 bytes'),
    build: (ctx) => v2(ctx, bodyOf([SECRET + 'x'.repeat(TEN_MB)], { n: 1 })),
  },
  {
    name: '10 000-deep nested array',
    expect: invalid('(malformed-body): body is nested deeper than'),
    build: (ctx) =>
      v2(ctx, `[[${'['.repeat(DEEP)}"${SECRET}"${']'.repeat(DEEP)}], {"n": 1}, null]`),
  },
  // Odd but valid: each runs once, and nothing leaks into Object.prototype.
  {
    name: '__proto__ key in kwargs',
    expect: RUNS,
    build: (ctx) => v2(ctx, `[[], {"n": 1, "__proto__": {"polluted": "yes"}}, null]`),
  },
  {
    name: 'constructor.prototype key in kwargs',
    expect: RUNS,
    build: (ctx) => v2(ctx, bodyOf([], { n: 1, constructor: { prototype: { polluted: 'yes' } } })),
  },
  {
    name: 'unicode and emoji arguments',
    expect: RUNS,
    build: (ctx) => v2(ctx, bodyOf(['日本語 ✓ 🐍', '\u0000'], { n: 1, 'clé 🔑': 'välue' })),
  },
  {
    name: 'bare NaN in an unchecked kwarg',
    expect: RUNS,
    build: (ctx) => v2(ctx, '[[], {"n": 1, "ratio": NaN}, null]'),
  },
  {
    name: 'kombu 5.3 tagged datetime',
    expect: RUNS,
    build: (ctx) =>
      v2(ctx, bodyOf([{ __type__: 'datetime', __value__: '2024-05-06T07:08:09+00:00' }], { n: 1 })),
  },
  {
    name: 'minimal headers {task, id}',
    expect: RUNS,
    build: (ctx) => ({ headers: { task: POISON_TASK, id: ctx.id }, body: '[[], {"n": 1}, null]' }),
  },
  {
    name: 'legacy v1 body',
    expect: RUNS,
    build: (ctx) => ({
      headers: undefined,
      body: JSON.stringify({ task: POISON_TASK, id: ctx.id, args: [], kwargs: { n: 1 } }),
    }),
  },
];
