import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  InvalidArgumentsError,
  InvalidConfigError,
  PayloadTooLargeError,
  RetrySignal,
} from '../../../src/core/errors.js';
import { createTaskContext, defineTask, isTask } from '../../../src/core/task.js';
import { RetryableError } from '../../helpers/factories.js';

const NOW = new Date('2026-01-01T00:00:00.000Z');

const saveEvent = defineTask(
  {
    name: 'ingest.save_event',
    queue: 'events',
    kwargs: z.object({ event_id: z.string(), attempt: z.number().int().optional() }),
    retry: { on: [RetryableError] },
    backoff: true,
    timeLimit: 30,
    softTimeLimit: 20,
  },
  async ({ event_id }) => event_id,
);

function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to throw');
}

describe('defineTask options', () => {
  it('applies Celery defaults', () => {
    const task = defineTask({ name: 'plain' }, () => null);

    expect(task.options).toMatchObject({
      queue: 'celery',
      maxRetries: 3,
      defaultRetryDelay: 180,
      aliases: [],
      maxArgumentBytes: 65_536,
    });
    expect(task.retryPolicy).toMatchObject({ on: [], exclude: [], ignore: [], backoff: null });
    expect(task.schedule).toBeNull();
    expect(isTask(task)).toBe(true);
  });

  it.each([
    ['backoff: true', true, { factor: 1, max: 600, jitter: true }],
    ['a factor', 5, { factor: 5, max: 600, jitter: true }],
    ['options', { factor: 2, jitter: false }, { factor: 2, max: 600, jitter: false }],
    ['backoff: false', false, null],
  ])('normalises %s into the retry policy', (_, backoff, expected) => {
    const task = defineTask({ name: 't', backoff }, () => null);

    expect(task.retryPolicy.backoff).toEqual(expected);
  });

  it.each([
    ['a misspelt option', { name: 't', maxRetires: 5 }, 'maxRetires'],
    ['a misspelt retry list', { name: 't', retry: { onn: [] } }, 'retry.onn'],
    ['an empty name', { name: '' }, 'name'],
    ['a name with spaces', { name: 'save event' }, 'name'],
    ['a negative maxRetries', { name: 't', maxRetries: -1 }, 'maxRetries'],
    [
      'a soft limit above the hard limit',
      { name: 't', timeLimit: 5, softTimeLimit: 10 },
      'softTimeLimit',
    ],
    ['an invalid cron', { name: 't', cron: '61 * * * *' }, 'cron'],
    ['a six-field cron', { name: 't', cron: '0 * * * * *' }, 'cron'],
    ['a kwargs schema that is not an object schema', { name: 't', kwargs: z.string() }, 'kwargs'],
    [
      'a retry entry that is neither class nor name',
      { name: 't', retry: { on: [42] } },
      'retry.on[0]',
    ],
  ])('rejects %s with an error naming the field', (_, options, path) => {
    const error = thrownBy(() => defineTask(options as never, () => null));

    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as InvalidConfigError).issues.map((issue) => issue.path)).toContain(path);
    expect((error as Error).message).toContain(path);
  });

  it('rejects a missing handler', () => {
    expect(() => defineTask({ name: 't' }, undefined as never)).toThrow(
      /handler: must be a function/,
    );
  });

  it.each([
    ['*/5 * * * *', { kind: 'cron', expression: '*/5 * * * *' }],
    ['rate(1 minute)', { kind: 'rate', value: 1, unit: 'minute', seconds: 60 }],
    ['rate(2 hours)', { kind: 'rate', value: 2, unit: 'hour', seconds: 7200 }],
  ])('parses the schedule %s', (cron, schedule) => {
    expect(defineTask({ name: 't', cron }, () => null).schedule).toEqual(schedule);
  });
});

describe('task.parseArguments', () => {
  it('keeps unknown kwargs so messages from newer producers still run', () => {
    const parsed = saveEvent.parseArguments([], { event_id: 'e1', added_in_v2: true });

    expect(parsed).toEqual({ ok: true, args: [], kwargs: { event_id: 'e1', added_in_v2: true } });
  });

  it('names every invalid known field', () => {
    const parsed = saveEvent.parseArguments([], { attempt: 1.5 });

    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.error).toBeInstanceOf(InvalidArgumentsError);
    expect(parsed.error.issues.map((issue) => issue.path).sort()).toEqual([
      'kwargs.attempt',
      'kwargs.event_id',
    ]);
  });

  it('checks positional args against an args schema', () => {
    const task = defineTask({ name: 't', args: z.tuple([z.number()]) }, () => null);

    expect(task.parseArguments([1], {}).ok).toBe(true);
    const parsed = task.parseArguments(['x'], {});
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.issues[0]?.path).toBe('args[0]');
  });
});

describe('task.createMessage', () => {
  it('builds a Celery message from the task defaults', () => {
    const message = saveEvent.createMessage({ kwargs: { event_id: 'e1' } }, NOW);

    expect(message).toMatchObject({
      task: 'ingest.save_event',
      routingKey: 'events',
      kwargs: { event_id: 'e1' },
      args: [],
      retries: 0,
      timeLimit: [30, 20],
      priority: 0,
      eta: null,
      expires: null,
      parentId: null,
      lang: 'ts',
      protocol: 2,
    });
    expect(message.rootId).toBe(message.id);
    expect(message.id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it('turns countdown and expires seconds into absolute times', () => {
    const message = saveEvent.createMessage(
      { kwargs: { event_id: 'e1' }, countdown: 60, expires: 3600 },
      NOW,
    );

    expect(message.eta?.toISOString()).toBe('2026-01-01T00:01:00.000Z');
    expect(message.expires?.toISOString()).toBe('2026-01-01T01:00:00.000Z');
  });

  it('lets a call override id, queue, priority and parent', () => {
    const message = saveEvent.createMessage(
      {
        kwargs: { event_id: 'e1' },
        id: 'fixed',
        queue: 'other',
        priority: 7,
        parentId: 'p',
        rootId: 'r',
      },
      NOW,
    );

    expect(message).toMatchObject({
      id: 'fixed',
      routingKey: 'other',
      priority: 7,
      parentId: 'p',
      rootId: 'r',
    });
  });

  it.each([
    ['a Date', { event_id: 'e', when: new Date() }, 'kwargs.when', /toISOString/],
    ['undefined', { event_id: 'e', gone: undefined }, 'kwargs.gone', /undefined/],
    ['NaN', { event_id: 'e', n: Number.NaN }, 'kwargs.n', /NaN/],
    ['Infinity', { event_id: 'e', n: Number.POSITIVE_INFINITY }, 'kwargs.n', /Infinity/],
    ['a BigInt', { event_id: 'e', big: 1n }, 'kwargs.big', /BigInt/],
    ['a function', { event_id: 'e', fn: () => 1 }, 'kwargs.fn', /function/],
    ['a class instance', { event_id: 'e', map: new Map() }, 'kwargs.map', /Map instance/],
    [
      'a nested class instance',
      { event_id: 'e', deep: { list: [new Uint8Array(1)] } },
      'kwargs.deep.list[0]',
      /Uint8Array/,
    ],
    ['a schema violation', { event_id: 42 }, 'kwargs.event_id', /expected string/],
  ])('refuses %s at publish time, naming the field', (_, kwargs, path, reason) => {
    const error = thrownBy(() => saveEvent.createMessage({ kwargs: kwargs as never }, NOW));

    expect(error).toBeInstanceOf(InvalidArgumentsError);
    const issue = (error as InvalidArgumentsError).issues.find((item) => item.path === path);
    expect(issue?.message).toMatch(reason);
  });

  it('refuses a circular argument', () => {
    const loop: Record<string, unknown> = { event_id: 'e' };
    loop.self = loop;

    expect(() => saveEvent.createMessage({ kwargs: loop as never }, NOW)).toThrow(
      /kwargs.self: circular/,
    );
  });

  it.each([
    ['a NaN countdown', { countdown: Number.NaN }, 'countdown'],
    ['an invalid eta', { eta: new Date('nope') }, 'eta'],
    ['a priority of 300', { priority: 300 }, 'priority'],
    ['an empty id', { id: '' }, 'id'],
  ])('refuses %s', (_, options, path) => {
    const error = thrownBy(() =>
      saveEvent.createMessage({ kwargs: { event_id: 'e' }, ...options }, NOW),
    );

    expect((error as InvalidArgumentsError).issues.map((issue) => issue.path)).toContain(path);
  });

  it('refuses a body over the size limit and says how big it was', () => {
    const small = defineTask({ name: 'small', maxArgumentBytes: 100 }, () => null);

    const error = thrownBy(() => small.createMessage({ args: ['x'.repeat(200)] }, NOW));

    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error).toMatchObject({ limit: 100, task: 'small' });
    expect((error as PayloadTooLargeError).bytes).toBeGreaterThan(200);
  });

  it('accepts a body of exactly 64 KiB and refuses one byte more by default', () => {
    const task = defineTask({ name: 'sized' }, () => null);
    const overhead = JSON.stringify([
      [''],
      {},
      { callbacks: null, errbacks: null, chain: null, chord: null },
    ]).length;

    expect(() => task.createMessage({ args: ['x'.repeat(65_536 - overhead)] }, NOW)).not.toThrow();
    expect(() => task.createMessage({ args: ['x'.repeat(65_537 - overhead)] }, NOW)).toThrow(
      PayloadTooLargeError,
    );
  });
});

describe('task context', () => {
  it('exposes the message and throws a retry signal from ctx.retry()', () => {
    const message = saveEvent.createMessage({ kwargs: { event_id: 'e1' } }, NOW);
    const ctx = createTaskContext(message, [], {
      signal: new AbortController().signal,
      remainingTimeMs: () => 1234,
    });

    expect(ctx).toMatchObject({ id: message.id, task: 'ingest.save_event', retries: 0 });
    expect(ctx.remainingTimeMs()).toBe(1234);
    const signal = thrownBy(() => ctx.retry({ countdown: 5 }));
    expect(signal).toBeInstanceOf(RetrySignal);
    expect((signal as RetrySignal).request).toEqual({ countdown: 5 });
  });
});

describe('task types', () => {
  it('types the handler kwargs from the schema and keeps unknown keys readable', () => {
    defineTask({ name: 'typed', kwargs: z.object({ id: z.number() }) }, (kwargs, ctx) => {
      expectTypeOf(kwargs.id).toEqualTypeOf<number>();
      expectTypeOf(kwargs.other).toEqualTypeOf<unknown>();
      expectTypeOf(ctx.retries).toEqualTypeOf<number>();
      return null;
    });
    expectTypeOf(saveEvent.createMessage)
      .parameter(0)
      .exclude<undefined>()
      .toHaveProperty('kwargs');
  });
});
