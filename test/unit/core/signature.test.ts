import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidArgumentsError } from '../../../src/core/errors.js';
import {
  celeryOptions,
  parseSignature,
  SUPPORTED_SUBTASK_TYPES,
  signature,
} from '../../../src/core/signature.js';
import { defineTask } from '../../../src/core/task.js';
import { loadCeleryFixture, type RedisMessageFixture } from '../../helpers/fixtures.js';

const add = defineTask(
  {
    name: 'wf.add',
    queue: 'ts_queue',
    args: z.tuple([z.number(), z.number()]),
  },
  (_kwargs, ctx) => ctx.args[0] + ctx.args[1],
);

describe('signature', () => {
  it("writes Celery's six keys in Celery's order", () => {
    // Act
    const sig = signature('t.x', { args: [1], kwargs: { k: 2 }, options: { queue: 'q' } });

    // Assess
    expect(JSON.stringify(sig)).toBe(
      '{"task":"t.x","args":[1],"kwargs":{"k":2},"options":{"queue":"q"},"subtask_type":null,"immutable":false}',
    );
  });

  it('matches the callback dicts Celery embeds (redis-embed-link)', () => {
    // Prepare
    const fixture = loadCeleryFixture<RedisMessageFixture>('redis-embed-link');
    const embed = fixture.message.body_decoded[2] as Record<string, unknown>;

    // Act
    const ours = {
      callbacks: [signature('sentry.tasks.do_work', { args: ['on-success'] })],
      errbacks: [signature('sentry.tasks.do_work', { args: ['on-error'] })],
    };

    // Assess
    expect(JSON.stringify(ours.callbacks)).toBe(JSON.stringify(embed.callbacks));
    expect(JSON.stringify(ours.errbacks)).toBe(JSON.stringify(embed.errbacks));
  });

  it.each([
    ['id', { id: 'x' }, { task_id: 'x' }],
    ['eta', { eta: new Date('2030-01-02T03:04:05Z') }, { eta: '2030-01-02T03:04:05+00:00' }],
    ['expires as a date', { expires: new Date(0) }, { expires: '1970-01-01T00:00:00+00:00' }],
    ['expires in seconds', { expires: 30 }, { expires: 30 }],
    ['time limits', { timeLimit: [30, 20] as const }, { time_limit: 30, soft_time_limit: 20 }],
    ['ignoreResult', { ignoreResult: true }, { ignore_result: true }],
    ['linkError', { linkError: signature('t.e') }, { link_error: [signature('t.e')] }],
    ['nothing', {}, {}],
  ])('maps %s to Celery option keys', (_, options, expected) => {
    expect(celeryOptions(options)).toEqual(expected);
  });

  it('refuses arguments that are not JSON and options out of range, naming each', () => {
    // Act
    const build = () =>
      signature('t.x', { args: [Number.NaN], options: { priority: 300, countdown: Infinity } });

    // Assess
    expect(build).toThrow(InvalidArgumentsError);
    expect(build).toThrow(/args\[0\].*options\.countdown.*options\.priority|args\[0\].*priority/);
  });
});

describe('Task.s and Task.si', () => {
  it("s() is partial, checked as JSON only, and names the task's queue", () => {
    // Act
    const sig = add.s({ args: [3] });

    // Assess
    expect(sig).toEqual({
      task: 'wf.add',
      args: [3],
      kwargs: {},
      options: { queue: 'ts_queue' },
      subtask_type: null,
      immutable: false,
    });
  });

  it('si() is immutable and checked against the schemas', () => {
    // Assess
    expect(add.si({ args: [1, 2], queue: 'other' })).toMatchObject({
      immutable: true,
      options: { queue: 'other' },
    });
    // @ts-expect-error args are [number, number]
    expect(() => add.si({ args: [1] })).toThrow(InvalidArgumentsError);
  });

  it('carries link and linkError into the embed, and counts them in the size limit', () => {
    // Prepare
    const small = defineTask({ name: 't.small', maxArgumentBytes: 200 }, () => null);
    const callback = signature('t.cb', { args: ['x'.repeat(150)] });

    // Act
    const message = add.createMessage({ args: [1, 2], link: add.s(), linkError: [callback] });

    // Assess
    expect(message.embed).toEqual({
      callbacks: [add.s()],
      errbacks: [callback],
      chain: null,
      chord: null,
    });
    expect(JSON.parse(message.rawBody ?? '')[2]).toEqual(message.embed);
    expect(() => small.createMessage({ link: callback })).toThrow(/over the limit of 200/);
  });

  it.each([
    ['the task default', undefined, undefined, false],
    ["the task's ignoreResult", true, undefined, true],
    ["a call's override", true, false, false],
  ])('writes ignore_result from %s', (_, onTask, onCall, expected) => {
    // Prepare
    const task = defineTask({ name: 't.quiet', ignoreResult: onTask }, () => null);

    // Act
    const message = task.createMessage({ ignoreResult: onCall });

    // Assess
    expect(message.ignoreResult).toBe(expected);
    expect(task.options.trackStarted).toBeUndefined();
  });

  it('refuses a link that is not a signature', () => {
    const bad = { task: 7 } as unknown as ReturnType<typeof signature>;
    expect(() => add.createMessage({ args: [1, 2], link: bad })).toThrow(/link\[0\]/);
  });
});

describe('parseSignature', () => {
  it.each([
    [
      'a full dict',
      { task: 't', args: [1], kwargs: {}, options: {}, subtask_type: null, immutable: true },
    ],
    ['a dict with only a task (defaults filled in)', { task: 't' }],
    [
      'a chain',
      { task: 'celery.chain', kwargs: { tasks: [{ task: 'a' }] }, subtask_type: 'chain' },
    ],
    [
      'a chord with a list header',
      {
        task: 'celery.chord',
        kwargs: { header: [{ task: 'a' }], body: { task: 'b' } },
        subtask_type: 'chord',
      },
    ],
    [
      'a chord with a group header',
      {
        task: 'celery.chord',
        kwargs: {
          header: { task: 'celery.group', kwargs: { tasks: [] }, subtask_type: 'group' },
          body: { task: 'b' },
        },
        subtask_type: 'chord',
      },
    ],
    ['an unsupported type (the caller decides)', { task: 'celery.chunks', subtask_type: 'chunks' }],
  ])('reads %s', (_, value) => {
    // Act
    const parsed = parseSignature(value, 'embed.callbacks[0]');

    // Assess
    expect(parsed.ok).toBe(true);
    if (parsed.ok) {
      expect(Object.keys(parsed.signature)).toEqual([
        'task',
        'args',
        'kwargs',
        'options',
        'subtask_type',
        'immutable',
      ]);
    }
  });

  it.each([
    ['a list', [1], 'not a signature object'],
    ['no task', { args: [] }, 'task must be a non-empty string'],
    ['args not a list', { task: 't', args: {} }, 'args must be a list'],
    ['options not an object', { task: 't', options: [] }, 'options must be an object'],
    ['immutable not a boolean', { task: 't', immutable: 'yes' }, 'immutable must be a boolean'],
    [
      'a chain without tasks',
      { task: 'celery.chain', subtask_type: 'chain' },
      'kwargs.tasks: must be a list',
    ],
    [
      'a bad chain step',
      { task: 'celery.chain', kwargs: { tasks: [{}] }, subtask_type: 'chain' },
      'kwargs.tasks[0]: task must',
    ],
    [
      'a chord without body',
      { task: 'celery.chord', kwargs: { header: [] }, subtask_type: 'chord' },
      'kwargs.body: not a signature',
    ],
  ])('refuses %s, saying where', (_, value, reason) => {
    // Act
    const parsed = parseSignature(value, 'embed.chain[0]');

    // Assess
    expect(parsed).toEqual({ ok: false, reason: expect.stringContaining(reason) });
    expect(parsed.ok ? '' : parsed.reason).toMatch(/^embed\.chain\[0\]/);
  });

  it('lists the types this package runs', () => {
    expect([...SUPPORTED_SUBTASK_TYPES]).toEqual([null, 'chain', 'group', 'chord']);
  });
});
