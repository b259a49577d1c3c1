/**
 * The canvas against Celery 5.2.6 itself: every case of `canvas-captures.json` (recorded by the
 * design's capture script, see its README key) rebuilt with our builders must publish the same
 * messages, up to fresh ids and `reply_to` (only Celery's rpc backend reads it; we leave it out).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type ApplyOptions,
  applySignature,
  chain,
  chord,
  deterministicId,
  type Expansion,
  group,
  needsResultBackend,
} from '../../../src/core/canvas.js';
import { InvalidArgumentsError } from '../../../src/core/errors.js';
import type { TaskMessage } from '../../../src/core/message.js';
import { celeryOptions, type SignatureDict, signature } from '../../../src/core/signature.js';
import { serializeBody } from '../../../src/core/wire.js';
import { loadCeleryFixture, type RedisMessageFixture } from '../../helpers/fixtures.js';

interface CapturedMessage {
  readonly headers: Record<string, unknown>;
  readonly queue: string;
  readonly body: unknown;
}
interface CapturedCase {
  readonly produced_by: string;
  readonly sent: CapturedMessage[];
  readonly chord_sizes: [string, number][];
}
const CAPTURES = JSON.parse(
  readFileSync(path.join(import.meta.dirname, 'canvas-captures.json'), 'utf8'),
) as { cases: Record<string, CapturedCase> };

const s = (task: string, ...args: number[]) => signature(task, { args });
const route: ApplyOptions['route'] = () => 'q';
const apply = (sig: SignatureDict, options: Partial<ApplyOptions> = {}) =>
  applySignature(sig, { idSeed: 'seed', route, ...options });

/** Our expansion in the capture's shape. */
function asCaptured(expansion: Expansion): CapturedCase {
  return {
    produced_by: '',
    sent: expansion.messages.map((message: TaskMessage) => ({
      headers: {
        task: message.task,
        id: message.id,
        group: message.group,
        group_index: message.groupIndex,
        root_id: message.rootId,
        parent_id: message.parentId,
        ignore_result: message.ignoreResult,
      },
      queue: message.routingKey,
      body: JSON.parse(serializeBody(message)),
    })),
    chord_sizes: expansion.chordSizes.map((size) => [size.groupId, size.size]),
  };
}

/** The `embed.chain` of a message, as signatures. */
function chainOf(message: TaskMessage | undefined): SignatureDict[] {
  return (message?.embed.chain ?? []) as unknown as SignatureDict[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Ids numbered by first appearance, `reply_to` and `None` options dropped, option keys sorted
 * (Celery's option order depends on the order calls were made; no reader depends on it). Every
 * other key keeps its order, so `JSON.stringify` compares key order too.
 */
function normalise(value: unknown): string {
  const ids = new Map<string, string>();
  const walk = (item: unknown, inOptions: boolean): unknown => {
    if (typeof item === 'string' && UUID.test(item)) {
      if (!ids.has(item)) ids.set(item, `<id${ids.size + 1}>`);
      return ids.get(item);
    }
    if (Array.isArray(item)) return item.map((x) => walk(x, false));
    if (item === null || typeof item !== 'object') return item;
    let entries = Object.entries(item).filter(([key]) => key !== 'reply_to');
    if (inOptions)
      entries = entries.filter(([, v]) => v !== null).sort(([a], [b]) => a.localeCompare(b));
    return Object.fromEntries(entries.map(([key, v]) => [key, walk(v, key === 'options')]));
  };
  return JSON.stringify(walk(value, false), null, 1);
}

const eb = s('t.eb');
const OURS: Record<string, () => Expansion> = {
  links: () =>
    apply(
      signature('t.a', {
        args: [1],
        options: { link: [s('t.cb1'), signature('t.cb2', { immutable: true })], linkError: eb },
      }),
    ),
  chain: () =>
    apply({ ...chain(s('t.a', 1), s('t.b'), s('t.c')), options: celeryOptions({ linkError: eb }) }),
  group: () => apply(group(s('t.a', 1), s('t.a', 2))),
  chord: () =>
    apply(chord([s('t.a', 1), s('t.a', 2)], signature('t.sum', { options: { queue: 'other' } }))),
  'chain-group': () => apply(chain(s('t.a', 1), group(s('t.b'), s('t.b')), s('t.sum'))),
};

describe('applySignature against Celery 5.2.6 captures', () => {
  it('covers every captured case', () => {
    expect(Object.keys(OURS).sort()).toEqual(Object.keys(CAPTURES.cases).sort());
  });

  it.each(Object.keys(OURS))('%s publishes what Celery publishes', (name) => {
    // Prepare
    // `props` (correlation_id = id) and `routing_key` are the codec's, covered elsewhere.
    const recorded = CAPTURES.cases[name] as CapturedCase;
    const captured = {
      ...recorded,
      sent: recorded.sent.map(({ headers, queue, body }) => ({
        headers: { ...headers },
        queue,
        body,
      })),
    };
    if (name === 'group') {
      // 5.2.6 leaves group_index null outside chords; 5.6 writes the index, and so do we.
      captured.sent.forEach((message, index) => {
        message.headers.group_index = index;
      });
    }

    // Act
    const ours = asCaptured((OURS[name] as () => Expansion)());

    // Assess
    expect(normalise({ ...ours, produced_by: '' })).toBe(
      normalise({ ...captured, produced_by: '' }),
    );
  });
});

describe('applySignature: chains', () => {
  it('writes the embed of the redis-embed-chain capture', () => {
    // Prepare
    const fixture = loadCeleryFixture<RedisMessageFixture>('redis-embed-chain');
    const step = (name: string) =>
      signature('sentry.tasks.do_work', { args: [name], options: { queue: 'important_queue' } });

    // Act
    const [first] = apply(chain(step('step1'), step('step2'), step('step3'))).messages;

    // Assess
    expect(first?.args).toEqual(fixture.message.body_decoded[0]);
    expect(normalise(first?.embed)).toBe(normalise(fixture.message.body_decoded[2]));
  });

  it('publishes the first step only, the rest last step first, each with its id', () => {
    // Act
    const expansion = apply(chain(s('t.a', 1), s('t.b'), s('t.c')));

    // Assess
    const [first] = expansion.messages;
    expect(expansion.messages).toHaveLength(1);
    expect(first?.task).toBe('t.a');
    const rest = chainOf(first);
    expect(rest.map((step) => step.task)).toEqual(['t.c', 't.b']);
    expect(expansion.id).toBe(rest[0]?.options.task_id);
    expect(expansion.id).toBe(deterministicId('seed'));
  });

  it('passes an outer chain on unchanged after its own steps', () => {
    // Prepare
    const outer = [{ task: 't.z', args: [], kwargs: {}, options: { task_id: 'z' } }];

    // Act
    const [first] = apply(chain(s('t.a'), s('t.b')), { chain: outer, args: [7] }).messages;

    // Assess
    expect(first?.args).toEqual([7]);
    expect(chainOf(first).map((step) => step.task)).toEqual(['t.z', 't.b']);
  });

  it('gives chain-level task_id and link to the last step, link_error to every step', () => {
    // Prepare
    const flow = {
      ...chain(s('t.a'), s('t.b'), s('t.c')),
      options: celeryOptions({ id: 'last-id', link: s('t.cb'), linkError: eb }),
    };

    // Act
    const [first] = apply(flow).messages;

    // Assess
    const [last, middle] = chainOf(first);
    expect(last?.options).toMatchObject({ task_id: 'last-id', link: [{ task: 't.cb' }] });
    expect(middle?.options.link).toBeUndefined();
    for (const step of [last, middle]) expect(step?.options.link_error).toEqual([eb]);
    expect(first?.embed.errbacks).toEqual([eb]);
    expect(first?.embed.callbacks).toBeNull();
  });

  it('keeps the root and parent of a continuation', () => {
    // Act
    const [first] = apply(chain(s('t.a'), s('t.b')), { parentId: 'p', rootId: 'r' }).messages;

    // Assess
    expect(first).toMatchObject({ parentId: 'p', rootId: 'r' });
    const [next] = chainOf(first);
    expect(next?.options.root_id).toBe('r');
  });
});

describe('applySignature: groups and chords', () => {
  it('sends every group member with the group id and its index, args prepended', () => {
    // Act
    const expansion = apply(group(s('t.a', 1), signature('t.b', { immutable: true })), {
      args: [9],
    });

    // Assess
    expect(expansion.messages.map((m) => [m.args, m.group, m.groupIndex])).toEqual([
      [[9, 1], expansion.id, 0],
      [[], expansion.id, 1],
    ]);
    expect(expansion.chordSizes).toEqual([]);
  });

  it('refuses a link on a group, as Celery does', () => {
    const linked = { ...group(s('t.a')), options: celeryOptions({ link: s('t.cb') }) };
    expect(() => apply(linked)).toThrow(InvalidArgumentsError);
  });

  it('embeds the frozen body in every header part and returns the chord size', () => {
    // Act
    const expansion = apply(chord([s('t.a', 1), s('t.a', 2), s('t.a', 3)], s('t.sum')));

    // Assess
    const [size] = expansion.chordSizes;
    expect(size?.size).toBe(3);
    for (const [index, message] of expansion.messages.entries()) {
      expect(message.group).toBe(size?.groupId);
      expect(message.groupIndex).toBe(index);
      expect(message.embed.chord).toMatchObject({
        task: 't.sum',
        options: { task_id: expansion.id },
      });
    }
  });

  it('sends the body at once with an empty list when the header is empty', () => {
    // Act
    const expansion = apply(chord([], s('t.sum', 5)));

    // Assess
    expect(expansion.messages.map((m) => [m.task, m.args, m.id])).toEqual([
      ['t.sum', [[], 5], expansion.id],
    ]);
    expect(expansion.chordSizes).toEqual([]);
  });
});

describe('applySignature: options and ids', () => {
  const now = new Date('2030-01-01T00:00:00Z');

  it.each([
    ['countdown', { countdown: 60 }, { eta: new Date('2030-01-01T00:01:00Z') }],
    ['eta', { eta: '2030-01-02T03:04:05+00:00' }, { eta: new Date('2030-01-02T03:04:05Z') }],
    [
      'countdown over eta',
      { countdown: 1, eta: '2031-01-01T00:00:00Z' },
      { eta: new Date('2030-01-01T00:00:01Z') },
    ],
    ['expires seconds', { expires: 10 }, { expires: new Date('2030-01-01T00:00:10Z') }],
    [
      'expires ISO',
      { expires: '2030-02-01T00:00:00Z' },
      { expires: new Date('2030-02-01T00:00:00Z') },
    ],
    ['task_id', { task_id: 'fixed' }, { id: 'fixed', rootId: 'fixed' }],
    ['queue', { queue: 'other', routing_key: 'rk' }, { routingKey: 'other' }],
    ['routing_key', { routing_key: 'rk' }, { routingKey: 'rk' }],
    ['no queue: the route', {}, { routingKey: 'q' }],
    ['priority', { priority: 5 }, { priority: 5 }],
    ['time limits', { time_limit: 30, soft_time_limit: 20 }, { timeLimit: [30, 20] }],
    ['shadow', { shadow: 'alias' }, { shadow: 'alias' }],
    ['ignore_result', { ignore_result: true }, { ignoreResult: true }],
    ['reply_to', { reply_to: 'oid' }, { replyTo: 'oid' }],
    ['group', { group_id: 'g', group_index: 2 }, { group: 'g', groupIndex: 2 }],
    ['parent and root', { parent_id: 'p', root_id: 'r' }, { parentId: 'p', rootId: 'r' }],
    ['unknown keys ignored', { stamped_headers: ['x'], exchange: 'e' }, { routingKey: 'q' }],
  ])('reads %s', (_, options, expected) => {
    // Act
    const [message] = apply({ ...s('t.a'), options }, { now }).messages;

    // Assess
    expect(message).toMatchObject(expected);
  });

  it.each([
    ['mutable', false, [7, 1], { k: 1, extra: 2 }],
    ['immutable', true, [1], { k: 1 }],
  ])('merges partial args and kwargs into a %s signature', (_, immutable, args, kwargs) => {
    // Prepare
    const sig = signature('t.a', { args: [1], kwargs: { k: 1 }, immutable });

    // Act
    const [message] = apply(sig, { args: [7], kwargs: { extra: 2 } }).messages;

    // Assess
    expect(message?.args).toEqual(args);
    expect(message?.kwargs).toEqual(kwargs);
  });

  it('keeps a group_id the signature already has, and overrides other options', () => {
    // Prepare
    const sig = { ...s('t.a'), options: { group_id: 'mine', queue: 'a', priority: 1 } };

    // Act
    const [message] = applySignature(sig, {
      idSeed: 'x',
      route,
      parentId: 'p',
      rootId: null,
    }).messages;

    // Assess
    expect(message).toMatchObject({ group: 'mine', routingKey: 'a', parentId: 'p' });
  });

  it('derives the same ids from the same seed, and other ids from another', () => {
    // Prepare
    const flow = chord([s('t.a', 1), s('t.a', 2)], s('t.sum'));
    const ids = (seed: string) => {
      const expansion = apply(flow, { idSeed: seed });
      return [
        expansion.id,
        ...expansion.messages.map((m) => m.id),
        expansion.chordSizes[0]?.groupId,
      ];
    };

    // Act
    const [first, again, other] = [ids('m1/callbacks/0'), ids('m1/callbacks/0'), ids('m2')];

    // Assess
    expect(again).toEqual(first);
    expect(new Set([...(first ?? []), ...(other ?? [])]).size).toBe(8);
    expect(deterministicId('seed')).toBe('ff4c093d-faf7-56cf-906e-ba2b76c73101'); // Python's uuid5
  });

  it('refuses a subtask type it cannot run', () => {
    const chunks = { ...s('celery.chunks'), subtask_type: 'chunks' };
    expect(() => apply(chunks)).toThrow(/chunks is not supported/);
  });
});

describe('needsResultBackend', () => {
  it.each([
    ['a plain signature', s('t.a'), false],
    ['a chain of plain steps', chain(s('t.a'), s('t.b')), false],
    ['a group', group(s('t.a'), s('t.b')), false],
    ['a chain ending in a group', chain(s('t.a'), group(s('t.b'))), false],
    ['a chord', chord([s('t.a')], s('t.b')), true],
    ['a chord with an empty header', chord([], s('t.b')), false],
    ['a group followed by a step', chain(group(s('t.a')), s('t.b')), true],
    ['a chord inside a group', group(chord([s('t.a')], s('t.b'))), true],
  ])('%s: %s', (_, sig, expected) => {
    expect(needsResultBackend(sig)).toBe(expected);
  });
});
