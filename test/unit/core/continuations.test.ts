import { describe, expect, it } from 'vitest';
import { deterministicId, routeFor } from '../../../src/core/canvas.js';
import { continuationsFor } from '../../../src/core/continuations.js';
import { DEAD_LETTER_REASONS, type DeadLetterReasonCode } from '../../../src/core/dead-letter.js';
import type { JsonObject, JsonValue } from '../../../src/core/json.js';
import { createTaskMessage, EMPTY_EMBED, type Embed } from '../../../src/core/message.js';
import { decodeRedisMessage } from '../../../src/core/redis-codec.js';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import type { TaskOutcome } from '../../../src/core/task-outcome.js';
import { expectDecoded } from '../../helpers/decode.js';
import { loadCeleryFixture, type RedisMessageFixture } from '../../helpers/fixtures.js';

const ours = defineTask({ name: 'ts.echo', queue: 'ts-q' }, () => null);
const registry = createRegistry({ tasks: [ours], queues: [{ name: 'ts-q' }] });
const route = routeFor(registry);
const NOW = new Date('2026-01-01T00:00:00.000Z');

/** A Celery signature dict, as Python's `json.dumps(sig)` writes it. */
function sig(
  task: string,
  init: { args?: JsonValue[]; options?: JsonObject; immutable?: boolean; type?: string } = {},
): JsonObject {
  return {
    task,
    args: init.args ?? [],
    kwargs: {},
    options: init.options ?? {},
    subtask_type: init.type ?? null,
    immutable: init.immutable ?? false,
  };
}

function messageWith(embed: Partial<Embed>, extra: { rootId?: string } = {}) {
  return createTaskMessage(
    {
      task: 'ts.echo',
      queue: 'ts-q',
      id: 'aaaaaaaa-0000-4000-8000-000000000001',
      ...(extra.rootId ? { rootId: extra.rootId } : {}),
      embed: { ...EMPTY_EMBED, ...embed },
    },
    NOW,
  );
}

const succeeded = (result: JsonValue): TaskOutcome => ({
  kind: 'succeeded',
  durationMs: 1,
  result,
});
const dead = (code: DeadLetterReasonCode): TaskOutcome => ({
  kind: 'dead',
  durationMs: 1,
  reason: { reason: code, detail: 'x', task: 'ts.echo', id: null, retries: 0 },
});
const options = { route, now: NOW };

describe('continuationsFor on success', () => {
  it('sends one callback with the result prepended, this task as parent and its root kept', () => {
    // Prepare
    const message = messageWith(
      { callbacks: [sig('wf.add', { args: [100], options: { queue: 'py-q' } })] },
      { rootId: 'root-1' },
    );

    // Act
    const { messages } = continuationsFor(succeeded(3), message, options);

    // Assess
    expect(messages).toHaveLength(1);
    const [next] = messages;
    expect(next).toMatchObject({
      task: 'wf.add',
      args: [3, 100],
      routingKey: 'py-q',
      parentId: message.id,
      rootId: 'root-1',
      id: deterministicId(`${message.id}/callbacks/0`),
      group: null,
    });
  });

  it('keeps the own args of an immutable callback and the id the sender froze', () => {
    const frozen = 'bbbbbbbb-0000-4000-8000-000000000002';
    const message = messageWith({
      callbacks: [sig('wf.add', { args: [1, 2], immutable: true, options: { task_id: frozen } })],
    });

    const [next] = continuationsFor(succeeded('ignored'), message, options).messages;

    expect(next).toMatchObject({ args: [1, 2], id: frozen, rootId: message.id });
  });

  it('sends several plain callbacks as one group, each with the result', () => {
    const message = messageWith({
      callbacks: [
        sig('wf.add', { args: [1] }),
        sig('wf.add', { args: [2], immutable: true }),
        sig('ts.echo'),
      ],
    });

    const { messages } = continuationsFor(succeeded(10), message, options);

    expect(messages.map((m) => m.args)).toEqual([[10, 1], [2], [10]]);
    const groupId = deterministicId(`${message.id}/callbacks`);
    expect(messages.map((m) => [m.group, m.groupIndex])).toEqual([
      [groupId, 0],
      [groupId, 1],
      [groupId, 2],
    ]);
    expect(new Set(messages.map((m) => m.id)).size).toBe(3);
    expect(messages.every((m) => m.parentId === message.id)).toBe(true);
  });

  it.each([
    ['a task nobody declares, without a queue', sig('py.only'), 'celery'],
    ['a declared task, without a queue', sig('ts.echo'), 'ts-q'],
    ['any task with its queue', sig('py.only', { options: { queue: 'py-q' } }), 'py-q'],
    ['any task with a routing key', sig('py.only', { options: { routing_key: 'rk' } }), 'rk'],
  ])('routes %s', (_name, callback, queue) => {
    const [next] = continuationsFor(
      succeeded(null),
      messageWith({ callbacks: [callback] }),
      options,
    ).messages;

    expect(next?.routingKey).toBe(queue);
  });

  it('pops the next chain step from the end and carries the rest on unchanged', () => {
    // Prepare: chain(us, b, c) as Celery writes it: [c, b]; b with its own link and link_error.
    const link = sig('wf.add', { args: [7] });
    const linkError = sig('wf.errback');
    const stepC = sig('wf.add', {
      args: ['c'],
      options: { task_id: 'cccc', queue: 'py-q', extra_key: 1 },
    });
    const stepB = sig('wf.add', {
      args: ['b'],
      options: { task_id: 'bbbb', queue: 'py-q', link: [link], link_error: [linkError] },
    });
    const message = messageWith({ chain: [stepC, stepB] }, { rootId: 'root-9' });

    // Act
    const { messages } = continuationsFor(succeeded({ n: 1 }), message, options);

    // Assess
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      id: 'bbbb',
      args: [{ n: 1 }, 'b'],
      parentId: message.id,
      rootId: 'root-9',
      routingKey: 'py-q',
      embed: { callbacks: [link], errbacks: [linkError], chain: [stepC], chord: null },
    });
  });

  it('sends the last chain step with no chain left', () => {
    const message = messageWith({ chain: [sig('wf.add', { options: { task_id: 'last' } })] });

    const [next] = continuationsFor(succeeded(1), message, options).messages;

    expect(next?.id).toBe('last');
    expect(next?.embed.chain ?? []).toEqual([]);
  });

  it('continues a real Celery chain message (fixture redis-embed-chain) with step 2', () => {
    const fixture = loadCeleryFixture<RedisMessageFixture>('redis-embed-chain');
    const message = expectDecoded(decodeRedisMessage(fixture.message.raw));
    const chain = message.embed.chain as JsonObject[];
    const step2 = chain[1] as { options: { task_id: string } };

    const [next] = continuationsFor(succeeded('r1'), message, options).messages;

    expect(next).toMatchObject({
      task: 'sentry.tasks.do_work',
      id: step2.options.task_id,
      args: ['r1', 'step2'],
      routingKey: 'important_queue',
      replyTo: expect.any(String),
      rootId: message.id,
      parentId: message.id,
      embed: { chain: [chain[0]] },
    });
  });

  it('sends callbacks first, then the chain step', () => {
    const message = messageWith({
      callbacks: [sig('wf.add', { args: [1] })],
      chain: [sig('ts.echo', { options: { task_id: 'step' } })],
    });

    const { messages } = continuationsFor(succeeded(5), message, options);

    expect(messages.map((m) => m.task)).toEqual(['wf.add', 'ts.echo']);
  });

  it('gives an ignored failure (retry.ignore) a null result', () => {
    const message = messageWith({ callbacks: [sig('wf.add', { args: [1] })] });
    const ignored: TaskOutcome = { kind: 'ignored', errorType: 'IgnoredError', durationMs: 1 };

    const [next] = continuationsFor(ignored, message, options).messages;

    expect(next?.args).toEqual([null, 1]);
  });

  it('derives the same ids every time, so a repeat after a crash republishes the same', () => {
    const message = messageWith({
      callbacks: [sig('wf.add'), sig('wf.add')],
      chain: [sig('wf.add')],
      errbacks: [sig('wf.errback')],
    });

    const first = continuationsFor(succeeded(1), message, options).messages.map((m) => m.id);
    const again = continuationsFor(succeeded(1), message, options).messages.map((m) => m.id);

    expect(again).toEqual(first);
    expect(new Set(first).size).toBe(3);
  });

  it('sends no errbacks on success', () => {
    const message = messageWith({ errbacks: [sig('wf.errback')] });

    expect(continuationsFor(succeeded(1), message, options).messages).toEqual([]);
  });
});

describe('continuationsFor on failure', () => {
  const errbackMessage = () =>
    messageWith(
      {
        callbacks: [sig('wf.add')],
        chain: [sig('wf.add')],
        errbacks: [
          sig('wf.errback', { options: { queue: 'py-q' } }),
          sig('wf.errback', { args: ['x'] }),
        ],
      },
      { rootId: 'root-2' },
    );

  it.each([
    DEAD_LETTER_REASONS.notRetryable,
    DEAD_LETTER_REASONS.excluded,
    DEAD_LETTER_REASONS.maxRetriesExceeded,
    DEAD_LETTER_REASONS.invalidArguments,
  ])('sends the errbacks as one group with the task id after a final failure (%s)', (code) => {
    const message = errbackMessage();

    const { messages } = continuationsFor(dead(code), message, options);

    const groupId = deterministicId(`${message.id}/errbacks`);
    expect(messages.map((m) => ({ task: m.task, args: m.args, group: m.group }))).toEqual([
      { task: 'wf.errback', args: [message.id], group: groupId },
      { task: 'wf.errback', args: [message.id, 'x'], group: groupId },
    ]);
    expect(messages[0]).toMatchObject({
      parentId: message.id,
      rootId: 'root-2',
      routingKey: 'py-q',
    });
  });

  it.each([
    DEAD_LETTER_REASONS.expired,
    DEAD_LETTER_REASONS.unknownTask,
    DEAD_LETTER_REASONS.invalidMessage,
    DEAD_LETTER_REASONS.poison,
    DEAD_LETTER_REASONS.unsupportedWorkflow,
  ])('sends nothing for a message that never ran (%s)', (code) => {
    expect(continuationsFor(dead(code), errbackMessage(), options).messages).toEqual([]);
  });

  it.each<[string, TaskOutcome]>([
    [
      'a retry',
      { kind: 'retry', dueAt: NOW.toISOString(), errorType: 'E', errorMessage: 'm', durationMs: 1 },
    ],
    ['a duplicate', { kind: 'duplicate', why: 'already-done', durationMs: 1 }],
    ['a message not yet due', { kind: 'not-due', dueAt: NOW.toISOString() }],
  ])('sends nothing after %s', (_name, outcome) => {
    expect(continuationsFor(outcome, errbackMessage(), options)).toEqual({
      messages: [],
      chordSizes: [],
    });
  });
});
