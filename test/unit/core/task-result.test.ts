import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../../src/core/json.js';
import { EMPTY_EMBED } from '../../../src/core/message.js';
import { createRegistry } from '../../../src/core/registry.js';
import { runMessage } from '../../../src/core/run-task.js';
import { settlementFor } from '../../../src/core/settlement.js';
import { defineTask } from '../../../src/core/task.js';
import { toTaskOutcome } from '../../../src/core/task-outcome.js';
import { encodeResult } from '../../../src/core/task-result.js';

const NOW = Date.parse('2026-01-01T00:00:00.000Z');
let returns: unknown = null;
const give = defineTask({ name: 'ts.give', queue: 'q', maxArgumentBytes: 1000 }, () => returns);
const registry = createRegistry({ tasks: [give], queues: [{ name: 'q' }] });
const callback: JsonObject = {
  task: 'wf.add',
  args: [],
  kwargs: {},
  options: {},
  subtask_type: null,
  immutable: false,
};
const errback: JsonObject = { ...callback, task: 'wf.errback' };
const plainMessage = () => give.createMessage({}, new Date(NOW));
const linkedMessage = () => ({
  ...plainMessage(),
  embed: { ...EMPTY_EMBED, callbacks: [callback], errbacks: [errback] },
});
const run = (message: ReturnType<typeof plainMessage>, keepResults = false) =>
  runMessage(registry, message, { now: () => NOW, keepResults }).then(toTaskOutcome);

describe('encodeResult', () => {
  it.each([
    ['undefined as null', undefined, null],
    ['a Date as its ISO text', new Date(NOW), '2026-01-01T00:00:00.000Z'],
    ['nested values as JSON', { a: [1, 'b', { c: true }] }, { a: [1, 'b', { c: true }] }],
  ])('encodes %s', (_name, value, expected) => {
    expect(encodeResult('t', value, 100)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['a BigInt', 1n, /result of task t is not JSON/],
    ['a function', () => 1, /result of task t is not JSON: function/],
    [
      'a value over the limit',
      'x'.repeat(200),
      /encodes to 202 bytes, over the limit of 100 bytes/,
    ],
  ])('refuses %s with a clear error', (_name, value, message) => {
    const encoded = encodeResult('t', value, 100);

    expect(encoded.ok).toBe(false);
    expect(!encoded.ok && encoded.error).toMatchObject({ name: 'ResultEncodeError', message });
  });
});

describe('results in outcomes', () => {
  it('leaves the result out when nothing needs it, whatever it is', async () => {
    returns = 1n;

    const outcome = await run(plainMessage());

    expect(outcome).toEqual({ kind: 'succeeded', durationMs: 0 });
  });

  it('carries the result when a workflow continues from it', async () => {
    returns = { rows: 3 };

    const outcome = await run(linkedMessage());

    expect(outcome).toEqual({ kind: 'succeeded', durationMs: 0, result: { rows: 3 } });
  });

  it('carries every result when results are kept (a result backend)', async () => {
    returns = undefined;

    const outcome = await run(plainMessage(), true);

    expect(outcome).toEqual({ kind: 'succeeded', durationMs: 0, result: null });
  });

  it('fails a task whose result is too large to pass on, and calls its errbacks', async () => {
    // Prepare
    returns = 'x'.repeat(2000);
    const message = linkedMessage();

    // Act
    const outcome = await run(message);
    const settlement = settlementFor(outcome, message, { route: () => 'celery' });

    // Assess
    expect(outcome).toMatchObject({
      kind: 'dead',
      reason: {
        reason: 'not-retryable',
        errorType: 'ResultEncodeError',
        detail: expect.stringMatching(/ts\.give encodes to 2002 bytes, over the limit of 1000/),
      },
    });
    expect(settlement.kind).toBe('dead-letter');
    expect(settlement.effects?.publish.map((m) => [m.task, m.args])).toEqual([
      ['wf.errback', [message.id]],
    ]);
  });
});
