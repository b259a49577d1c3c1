import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseResultBackendConfig } from '../../../src/config/result-backend-config.js';
import { AsyncResult } from '../../../src/core/async-result.js';
import { DEAD_LETTER_REASONS } from '../../../src/core/dead-letter.js';
import type { JsonValue } from '../../../src/core/json.js';
import { createTaskMessage } from '../../../src/core/message.js';
import {
  decodeException,
  encodeException,
  globalKeyPrefix,
  parseResultMeta,
  pendingMeta,
  type ResultMeta,
  resultMetaJson,
  TaskFailedError,
  taskMetaKey,
  tasksetKey,
} from '../../../src/core/result-backend.js';
import {
  type ChordPart,
  chordMember,
  chordPartOf,
  completeChord,
  decideChord,
} from '../../../src/core/result-chord.js';
import { metaForRecord, outcomeState } from '../../../src/core/result-meta.js';
import type { TaskOutcome } from '../../../src/core/task-outcome.js';
import { CELERY_FIXTURES_DIR } from '../../helpers/fixtures.js';

interface StoredCapture {
  readonly raw: string;
  readonly value: Record<string, unknown>;
}
const fixture = JSON.parse(
  readFileSync(path.join(CELERY_FIXTURES_DIR, 'redis-result-backend.json'), 'utf8'),
) as { results: { success: StoredCapture; failure: StoredCapture } };

const NOW = new Date('2026-01-02T03:04:05.678Z');
const ID = 'aaaaaaaa-0000-4000-8000-000000000001';
const message = createTaskMessage({ task: 'ts.add', queue: 'q', id: ID, args: [1, 2] });

function record(outcome: TaskOutcome, children: string[] = []) {
  return { message, outcome, store: true, children };
}

describe('result meta', () => {
  it.each(['success', 'failure'] as const)('keeps Celery field order (%s capture)', (name) => {
    const captured = fixture.results[name];
    const meta = parseResultMeta(captured.raw);
    expect(meta).not.toBeNull();
    const ours = resultMetaJson(meta as ResultMeta);
    expect(Object.keys(JSON.parse(ours))).toEqual(Object.keys(captured.value));
    expect(JSON.parse(ours)).toEqual(captured.value);
  });

  it('writes a success with date_done, children and the field order of the capture', () => {
    const meta = metaForRecord(
      record({ kind: 'succeeded', durationMs: 1, result: 3 }, ['c1']),
      NOW,
    ) as ResultMeta;
    expect(JSON.parse(resultMetaJson(meta))).toEqual({
      status: 'SUCCESS',
      result: 3,
      traceback: null,
      children: [[['c1', null], null]],
      date_done: '2026-01-02T03:04:05.678000+00:00',
      task_id: ID,
    });
    expect(Object.keys(JSON.parse(resultMetaJson(meta)))).toEqual(
      Object.keys(fixture.results.success.value),
    );
  });

  it('puts group_id and parent_id before task_id', () => {
    const child = createTaskMessage({ task: 't', queue: 'q', id: ID, group: 'g', parentId: 'p' });
    const meta = metaForRecord(
      {
        message: child,
        outcome: { kind: 'ignored', errorType: 'X', durationMs: 1 },
        store: true,
        children: [],
      },
      NOW,
    ) as ResultMeta;
    expect(Object.keys(JSON.parse(resultMetaJson(meta)))).toEqual([
      'status',
      'result',
      'traceback',
      'children',
      'date_done',
      'group_id',
      'parent_id',
      'task_id',
    ]);
  });

  it('reads PENDING for junk', () => {
    expect(parseResultMeta('nope')).toBeNull();
    expect(pendingMeta('x').status).toBe('PENDING');
  });
});

const dead = (reason: string, extra: object = {}): TaskOutcome => ({
  kind: 'dead',
  durationMs: 1,
  reason: { reason, detail: 'd', task: 'ts.add', id: ID, retries: 0, ...extra } as never,
});

describe('outcome states', () => {
  it.each<[string, TaskOutcome, { status: string; result: JsonValue } | null]>([
    [
      'success',
      { kind: 'succeeded', durationMs: 1, result: { a: 1 } },
      { status: 'SUCCESS', result: { a: 1 } },
    ],
    [
      'ignored',
      { kind: 'ignored', errorType: 'E', durationMs: 1 },
      { status: 'SUCCESS', result: null },
    ],
    [
      'retry',
      {
        kind: 'retry',
        dueAt: NOW.toISOString(),
        errorType: 'Busy',
        errorMessage: 'later',
        durationMs: 1,
      },
      {
        status: 'RETRY',
        result: { exc_type: 'Busy', exc_message: ['later'], exc_module: 'serverless_celery' },
      },
    ],
    [
      'failure',
      dead(DEAD_LETTER_REASONS.notRetryable, { errorType: 'Boom', errorMessage: 'bad' }),
      {
        status: 'FAILURE',
        result: { exc_type: 'Boom', exc_message: ['bad'], exc_module: 'serverless_celery' },
      },
    ],
    [
      'unknown task',
      dead(DEAD_LETTER_REASONS.unknownTask),
      {
        status: 'FAILURE',
        result: {
          exc_type: 'NotRegistered',
          exc_message: ['ts.add'],
          exc_module: 'celery.exceptions',
        },
      },
    ],
    [
      'expired',
      dead(DEAD_LETTER_REASONS.expired),
      {
        status: 'REVOKED',
        result: {
          exc_type: 'TaskRevokedError',
          exc_message: ['expired'],
          exc_module: 'celery.exceptions',
        },
      },
    ],
    ['duplicate', { kind: 'duplicate', why: 'already-done', durationMs: 1 }, null],
  ])('%s', (_name, outcome, expected) => {
    const state = outcomeState(outcome);
    expect(state === null ? null : { status: state.status, result: state.result }).toEqual(
      expected,
    );
  });

  it('never writes builtins for our errors, keeps a Python module on a round trip', () => {
    expect(encodeException(new TypeError('x')).exc_module).toBe('serverless_celery');
    const python = fixture.results.failure.value.result as JsonValue;
    expect(decodeException(python)).toEqual({
      exc_type: 'FatalError',
      exc_message: ['interop_raise=fatal at retries=0'],
      exc_module: 'interop_app',
    });
  });
});

describe('keys', () => {
  it.each([
    ['', 'celery-task-meta-x'],
    ['app', 'app_celery-task-meta-x'],
    ['app:', 'app:celery-task-meta-x'],
    ['app-', 'app-celery-task-meta-x'],
  ])('global_keyprefix %j', (prefix, key) => {
    expect(taskMetaKey('x', prefix)).toBe(key);
    expect(tasksetKey('g', prefix)).toBe(`${globalKeyPrefix(prefix)}celery-taskset-meta-g`);
  });

  it('reads the options off a URL', () => {
    expect(
      parseResultBackendConfig('redis://h:6379/3?global_keyprefix=p&result_expires=60'),
    ).toEqual({
      url: 'redis://h:6379/3',
      keyPrefix: 'p',
      expiresSeconds: 60,
      extended: false,
      trackStarted: false,
    });
    expect(() => parseResultBackendConfig('amqp://h')).toThrow(/resultBackend/);
  });
});

describe('chords', () => {
  const body = {
    task: 'wf.tsum',
    args: [],
    kwargs: {},
    options: {
      task_id: 'body-id',
      queue: 'py',
      link_error: [
        {
          task: 'wf.errback',
          args: [],
          kwargs: {},
          options: {},
          subtask_type: null,
          immutable: false,
        },
      ],
    },
    subtask_type: null,
    immutable: false,
  };
  const part = createTaskMessage({
    task: 'ts.add',
    queue: 'q',
    id: ID,
    group: 'gid',
    groupIndex: 1,
    rootId: 'root',
    embed: { callbacks: null, errbacks: null, chain: null, chord: body },
  });
  const counted = chordPartOf(part) as ChordPart;
  const ok = (id: string, result: JsonValue) =>
    chordMember({ ...pendingMeta(id), status: 'SUCCESS', result });

  it('fires the body with the results in order', () => {
    const decision = decideChord([ok('a', 1), ok('b', 2)]);
    expect(decision).toEqual({ kind: 'fire', results: [1, 2] });
    const done = completeChord(counted, decision, { route: () => 'celery', now: NOW });
    expect(done.failure).toBeNull();
    expect(done.publish).toHaveLength(1);
    expect(done.publish[0]).toMatchObject({
      id: 'body-id',
      task: 'wf.tsum',
      args: [[1, 2]],
      parentId: ID,
      rootId: 'root',
    });
  });

  it('a failed part fails the body with ChordError and calls its errbacks', () => {
    const failed = chordMember({
      ...pendingMeta('b'),
      status: 'FAILURE',
      result: { exc_type: 'Boom', exc_message: ['bad'], exc_module: 'm' },
    });
    const decision = decideChord([ok('a', 1), failed]);
    expect(decision).toEqual({ kind: 'fail', reason: "Dependency b raised Boom('bad')" });
    const done = completeChord(counted, decision, { route: () => 'celery', now: NOW });
    expect(done.failure).toMatchObject({
      status: 'FAILURE',
      task_id: 'body-id',
      result: { exc_type: 'ChordError', exc_module: 'celery.exceptions' },
    });
    expect(done.publish.map((m) => [m.task, m.args])).toEqual([['wf.errback', ['body-id']]]);
  });
});

describe('AsyncResult', () => {
  const stored = (meta: ResultMeta) => ({
    getMeta: async () => meta,
    waitFor: async () => meta,
  });

  it('returns a success value and states', async () => {
    const handle = new AsyncResult(
      ID,
      stored({ ...pendingMeta(ID), status: 'SUCCESS', result: 3 }),
    );
    await expect(handle.get({ timeout: 1 })).resolves.toBe(3);
    await expect(handle.state()).resolves.toBe('SUCCESS');
    await expect(handle.ready()).resolves.toBe(true);
  });

  it('throws the failure with its exception type', async () => {
    const meta = parseResultMeta(fixture.results.failure.raw) as ResultMeta;
    const error = await new AsyncResult(ID, stored(meta)).get().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect((error as TaskFailedError).exception.exc_type).toBe('FatalError');
  });
});
