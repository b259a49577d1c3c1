import { describe, expect, it } from 'vitest';
import { admitMessage } from '../../../src/core/admit.js';
import type { JsonObject, JsonValue } from '../../../src/core/json.js';
import { EMPTY_EMBED, type Embed } from '../../../src/core/message.js';
import { createRegistry } from '../../../src/core/registry.js';
import { runMessage } from '../../../src/core/run-task.js';
import { defineTask } from '../../../src/core/task.js';
import { workflowRefusal } from '../../../src/core/workflow-check.js';

const runs: unknown[] = [];
const echo = defineTask({ name: 'ts.echo', queue: 'q' }, (_kwargs, ctx) => {
  runs.push(ctx.args);
  return ctx.args;
});
const registry = createRegistry({ tasks: [echo], queues: [{ name: 'q' }] });

function sig(task: string, kwargs: JsonObject = {}, type: string | null = null): JsonObject {
  return { task, args: [], kwargs, options: {}, subtask_type: type, immutable: false };
}
const plain = sig('wf.add');
const group = (...tasks: JsonValue[]) => sig('celery.group', { tasks }, 'group');
const chain = (...tasks: JsonValue[]) => sig('celery.chain', { tasks }, 'chain');
const chord = (header: JsonValue[], body: JsonValue) =>
  sig('celery.chord', { kwargs: {}, header, body }, 'chord');
const embed = (parts: Partial<Embed>): Embed => ({ ...EMPTY_EMBED, ...parts });

describe('workflowRefusal', () => {
  it.each<[string, Embed]>([
    ['no workflow', EMPTY_EMBED],
    [
      'plain callbacks, errbacks and chain steps',
      embed({ callbacks: [plain, plain], errbacks: [plain], chain: [plain] }),
    ],
    ['a group as a callback', embed({ callbacks: [group(plain, plain)] })],
    ['a chain as a callback', embed({ callbacks: [chain(plain, plain)] })],
    [
      'a chord with an empty header (its body is sent at once)',
      embed({ chain: [chord([], plain)] }),
    ],
    [
      'chunks as Celery writes them (a plain signature of its built-in task)',
      embed({ callbacks: [sig('celery.chunks', { task: plain, it: [[1, 1]], n: 1 })] }),
    ],
  ])('accepts %s without a result backend', (_name, parts) => {
    expect(workflowRefusal(parts, { results: false })).toBeNull();
  });

  it.each<[string, Embed, RegExp]>([
    [
      'a callback that is not a signature',
      embed({ callbacks: ['wf.add'] }),
      /embed\.callbacks\[0\]: not a signature/,
    ],
    [
      'a signature without a task',
      embed({ errbacks: [{ args: [] }] }),
      /embed\.errbacks\[0\]: task must be/,
    ],
    [
      'chunks',
      embed({ callbacks: [sig('celery.chunks', {}, 'chunks')] }),
      /embed\.callbacks\[0\].*chunks/,
    ],
    [
      'xmap inside a group',
      embed({ chain: [group(plain, sig('celery.map', {}, 'xmap'))] }),
      /embed\.chain\[0\].*xmap/,
    ],
    [
      'a chord as a chain step',
      embed({ chain: [plain, chord([plain, plain], plain)] }),
      /embed\.chain\[1\].*result backend/,
    ],
    [
      'a chain that turns into a chord',
      embed({ callbacks: [chain(group(plain, plain), plain)] }),
      /embed\.callbacks\[0\].*result backend/,
    ],
    [
      'a chord part',
      embed({ chord: plain }),
      /embed\.chord: this task is a chord part.*result backend/,
    ],
  ])('refuses %s, naming it', (_name, parts, detail) => {
    expect(workflowRefusal(parts, { results: false })).toMatch(detail);
  });

  it.each<[string, Embed]>([
    ['a chord as a chain step', embed({ chain: [chord([plain, plain], plain)] })],
    ['a chord part', embed({ chord: plain })],
  ])('accepts %s with a result backend', (_name, parts) => {
    expect(workflowRefusal(parts, { results: true })).toBeNull();
  });
});

describe('admission of a workflow', () => {
  const NOW = Date.parse('2026-01-01T00:00:00.000Z');
  const unsupported = () => ({
    ...echo.createMessage({}, new Date(NOW)),
    embed: embed({ chain: [sig('celery.chunks', {}, 'chunks')] }),
  });

  it('dead-letters a workflow it cannot honour with the reason unsupported-workflow', () => {
    const message = unsupported();

    const admission = admitMessage(registry, message, NOW);

    expect(admission).toMatchObject({
      kind: 'settle',
      outcome: {
        kind: 'dead',
        reason: {
          reason: 'unsupported-workflow',
          task: 'ts.echo',
          id: message.id,
          detail: expect.stringMatching(/chunks/),
        },
      },
    });
  });

  it('never runs such a task', async () => {
    runs.length = 0;

    const outcome = await runMessage(registry, unsupported(), { now: () => NOW });

    expect(outcome).toMatchObject({ kind: 'dead', reason: { reason: 'unsupported-workflow' } });
    expect(runs).toEqual([]);
  });

  it('admits a chord part once a result backend is there', () => {
    const message = { ...echo.createMessage({}, new Date(NOW)), embed: embed({ chord: plain }) };

    expect(admitMessage(registry, message, NOW).kind).toBe('settle');
    expect(admitMessage(registry, message, NOW, { results: true }).kind).toBe('run');
  });
});
