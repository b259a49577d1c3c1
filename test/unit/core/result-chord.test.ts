import { describe, expect, it } from 'vitest';
import { applySignature, chain, chord, deterministicId } from '../../../src/core/canvas.js';
import type { JsonValue } from '../../../src/core/json.js';
import { createTaskMessage, type TaskMessage } from '../../../src/core/message.js';
import { pendingMeta } from '../../../src/core/result-backend.js';
import {
  type ChordPart,
  chainStepChordPart,
  chordMember,
  chordPartOf,
  completeChord,
  decideChord,
} from '../../../src/core/result-chord.js';
import { type SignatureDict, signature } from '../../../src/core/signature.js';

const NOW = new Date('2026-01-02T03:04:05.678Z');
const route = () => 'celery';
const errback = (task: string, init: { args?: JsonValue[]; immutable?: boolean } = {}) =>
  signature(task, init);

/** The first header message of chord([chain(fail, add), add], body): the chain's first step. */
function chainInHeader(body: SignatureDict): TaskMessage {
  const canvas = chord(
    [chain(signature('ts.fail'), signature('wf.add', { args: [1] })), signature('wf.add')],
    body,
  );
  const [first] = applySignature(canvas, { idSeed: 'wf', route, rootId: 'root' }).messages;
  if (!first) throw new Error('the chord published nothing');
  return first;
}

const failedMeta = (id: string) => ({
  ...pendingMeta(id),
  status: 'FAILURE' as const,
  result: { exc_type: 'StepFailed', exc_message: ['on purpose'], exc_module: 'serverless_celery' },
});

describe('which chord parts a message counts', () => {
  it("counts a chain's last step when an earlier step of it failed", () => {
    // Prepare
    const failing = chainInHeader(signature('wf.tsum', { options: { id: 'body-id' } }));
    const [last] = failing.embed.chain ?? [];

    // Act
    const part = chainStepChordPart(last as JsonValue, failing);

    // Assess: the step's own ids, as Celery's mark_as_failure reads them off its options.
    const options = (last as { options: Record<string, JsonValue> }).options;
    expect(failing.group).toBeNull();
    expect(chordPartOf(failing)).toBeNull();
    expect(part).toEqual({
      id: options.task_id,
      group: options.group_id,
      groupIndex: 0,
      body: options.chord,
      senderId: failing.id,
      rootId: 'root',
    });
    expect(part?.id).not.toBe(failing.id);
  });

  const step = (options: Record<string, JsonValue>): JsonValue => ({
    task: 'wf.add',
    args: [],
    kwargs: {},
    options,
    subtask_type: null,
    immutable: false,
  });
  const body = { task: 'wf.tsum', args: [], kwargs: {}, options: {} };

  it.each<[string, JsonValue, Partial<ChordPart> | null]>([
    ['a step outside any chord', step({ task_id: 's', group_id: 'g' }), null],
    ['a step with a null chord', step({ task_id: 's', group_id: 'g', chord: null }), null],
    ['a chord step without a group id', step({ task_id: 's', chord: body }), null],
    ['a chord step without an id', step({ group_id: 'g', chord: body }), null],
    ['a step that is not an object', 'wf.add', null],
    [
      'a chord step without group_index',
      step({ task_id: 's', group_id: 'g', chord: body }),
      { id: 's', group: 'g', groupIndex: null },
    ],
    [
      'a chord step with group_index 3',
      step({ task_id: 's', group_id: 'g', group_index: 3, chord: body }),
      { id: 's', group: 'g', groupIndex: 3 },
    ],
  ])('%s', (_name, chainStep, expected) => {
    const sender = createTaskMessage({ task: 'ts.fail', queue: 'q', id: 'sender' });
    const part = chainStepChordPart(chainStep, sender);
    if (expected === null) expect(part).toBeNull();
    else expect(part).toMatchObject({ ...expected, senderId: 'sender', rootId: 'sender' });
  });
});

describe("the culprit's text (Celery's `Dependency {tid} raised {retval!r}`)", () => {
  // Each expected text printed by Celery 5.2.6's exception_to_python + repr on Python 3.11.
  it.each<[JsonValue[], string]>([
    [['bad'], "Boom('bad')"],
    [["it's"], `Boom("it's")`],
    [['say "hi"'], `Boom('say "hi"')`],
    [[`both ' and "`], `Boom('both \\' and "')`],
    [['back\\slash'], "Boom('back\\\\slash')"],
    [['line\nbreak\ttab'], "Boom('line\\nbreak\\ttab')"],
    [['é ü 漢 😀'], "Boom('é ü 漢 😀')"],
    [['\u0000\u0007\u007f\u200b\u00a0'], "Boom('\\x00\\x07\\x7f\\u200b\\xa0')"],
    [['bad', 3], "Boom('bad', 3)"],
    [[], 'Boom()'],
    [[null, true, false], 'Boom(None, True, False)'],
    [[1.5, 1e-5, 2.5e21, 10 ** 17], 'Boom(1.5, 1e-05, 2.5e+21, 100000000000000000)'],
    [[{ a: [1, 'b'] }], "Boom({'a': [1, 'b']})"],
  ])('%j', (args, repr) => {
    const member = chordMember({
      ...pendingMeta('b'),
      status: 'FAILURE',
      result: { exc_type: 'Boom', exc_message: args, exc_module: 'nowhere' },
    });
    expect(decideChord([member])).toEqual({ kind: 'fail', reason: `Dependency b raised ${repr}` });
  });

  it('fails on the first failed part in header order, not the last counted', () => {
    const ok = chordMember({ ...pendingMeta('a'), status: 'SUCCESS', result: 1 });
    const revoked = chordMember({
      ...pendingMeta('b'),
      status: 'REVOKED',
      result: { exc_type: 'TaskRevokedError', exc_message: ['expired'], exc_module: 'x' },
    });
    const failed = chordMember(failedMeta('c'));
    expect(decideChord([ok, revoked, failed])).toEqual({
      kind: 'fail',
      reason: "Dependency b raised TaskRevokedError('expired')",
    });
  });

  it('reads a Python part holding NaN instead of throwing', () => {
    const member = '[1, "a", "SUCCESS", NaN]';
    expect(decideChord([member])).toEqual({ kind: 'fire', results: [Number.NaN] });
  });
});

describe('a failed chord', () => {
  const errbacks = [
    errback('wf.errback'),
    errback('wf.notify', { args: ['ops'], immutable: true }),
  ];
  const body = signature('wf.tsum', { options: { id: 'body-id', linkError: errbacks } });
  const part = chainStepChordPart(
    (chainInHeader(body).embed.chain ?? [])[0] as JsonValue,
    chainInHeader(body),
  ) as ChordPart;
  const decision = { kind: 'fail', reason: "Dependency x raised Boom('bad')" } as const;

  it('stores ChordError on the body id, as chord_error_from_stack does with no request', () => {
    const done = completeChord(part, decision, { route, now: NOW });
    expect(done.failure).toEqual({
      status: 'FAILURE',
      result: {
        exc_type: 'ChordError',
        exc_message: ["Dependency x raised Boom('bad')"],
        exc_module: 'celery.exceptions',
      },
      traceback: null,
      children: [],
      date_done: '2026-01-02T03:04:05.678000+00:00',
      task_id: 'body-id',
    });
  });

  it("sends the body's errbacks as one group with args (body_id,), as _call_task_errbacks", () => {
    const done = completeChord(part, decision, { route, now: NOW });
    const groupId = deterministicId('body-id/errbacks');
    expect(
      done.publish.map((m) => ({
        task: m.task,
        args: m.args,
        group: m.group,
        groupIndex: m.groupIndex,
        parentId: m.parentId,
        rootId: m.rootId,
      })),
    ).toEqual([
      {
        task: 'wf.errback',
        args: ['body-id'],
        group: groupId,
        groupIndex: 0,
        parentId: 'body-id',
        rootId: 'body-id',
      },
      {
        task: 'wf.notify',
        args: ['ops'],
        group: groupId,
        groupIndex: 1,
        parentId: 'body-id',
        rootId: 'body-id',
      },
    ]);
  });

  it('publishes the same ids when the last part is counted again', () => {
    const ids = (d: ReturnType<typeof completeChord>) => d.publish.map((m) => m.id);
    const first = completeChord(part, decision, { route, now: NOW });
    const again = completeChord(part, decision, { route, now: NOW });
    expect(ids(again)).toEqual(ids(first));
    expect(new Set(ids(first)).size).toBe(2);
  });

  it('still sends a lone errback inside a group (Celery 5.2 and 5.6 set its group id)', () => {
    const lone = signature('wf.tsum', { options: { id: 'b2', linkError: errback('wf.errback') } });
    const done = completeChord({ ...part, body: lone as unknown as JsonValue }, decision, {
      route,
    });
    expect(done.publish).toHaveLength(1);
    expect(done.publish[0]).toMatchObject({
      args: ['b2'],
      group: deterministicId('b2/errbacks'),
      groupIndex: 0,
    });
  });

  it('fails a body without an id under the id it would have fired with', () => {
    const anonymous = { ...part, body: signature('wf.tsum') as unknown as JsonValue };
    const fired = completeChord(anonymous, { kind: 'fire', results: [1] }, { route });
    const failed = completeChord(anonymous, decision, { route });
    expect(failed.publish).toEqual([]);
    expect(failed.failure?.task_id).toBe(fired.publish[0]?.id);
  });
});

describe('a chord that completes', () => {
  it('sends the body with the sender as parent and the root kept', () => {
    const message = createTaskMessage({
      task: 'wf.add',
      queue: 'q',
      id: 'sender',
      rootId: 'root',
      group: 'g',
      groupIndex: 0,
      embed: {
        callbacks: null,
        errbacks: null,
        chain: null,
        chord: signature('wf.tsum', { options: { id: 'body-id' } }) as unknown as JsonValue,
      },
    });
    const done = completeChord(
      chordPartOf(message) as ChordPart,
      { kind: 'fire', results: [1, 2] },
      { route },
    );
    expect(done.failure).toBeNull();
    expect(done.publish[0]).toMatchObject({
      id: 'body-id',
      args: [[1, 2]],
      parentId: 'sender',
      rootId: 'root',
    });
  });
});
