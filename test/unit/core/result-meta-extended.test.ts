/**
 * Celery's `result_extended` fields and the STARTED meta, compared with the JSON Celery itself
 * writes: the expected texts below were printed by `RedisBackend._get_result_meta` + `encode` of
 * Celery 5.2.6 and 5.6.3 for the same request (group, parent, retries 2, routing key `q1`,
 * worker `ts7@host`), `date_done` replaced by `DATE`. Both versions wrote the same text, except
 * 5.6's stamps on a stamped message.
 */
import { describe, expect, it } from 'vitest';
import { workerNodeName } from '../../../src/core/event-dispatcher.js';
import type { TaskMessage } from '../../../src/core/message.js';
import { type ResultMeta, resultMetaJson } from '../../../src/core/result-backend.js';
import {
  chainStepMeta,
  extendedMeta,
  metaForRecord,
  startedMeta,
  tracksStarted,
  WORKER_HOSTNAME,
} from '../../../src/core/result-meta.js';
import { defineTask } from '../../../src/core/task.js';

const CELERY_SUCCESS =
  '{"status": "SUCCESS", "result": 3, "traceback": null, "children": [], "date_done": "DATE", "group_id": "g-1", "parent_id": "p-1", "name": "ts.add", "args": [1, 2], "kwargs": {"k": "v"}, "worker": "ts7@host", "retries": 2, "queue": "q1", "task_id": "id-1"}';
const CELERY_STARTED =
  '{"status": "STARTED", "result": {"pid": 42, "hostname": "ts7@host"}, "traceback": null, "children": [], "date_done": null, "group_id": "g-1", "parent_id": "p-1", "name": "ts.add", "args": [1, 2], "kwargs": {"k": "v"}, "worker": "ts7@host", "retries": 2, "queue": "q1", "task_id": "id-1"}';
/** `mark_as_failure` of `id-1` (group `g-1`) on its remaining chain step `step-1`. */
const CELERY_CHAIN_STEP =
  '{"status": "FAILURE", "result": {"exc_type": "Boom", "exc_message": ["x"], "exc_module": "__main__"}, "traceback": null, "children": [], "date_done": "DATE", "parent_id": "id-1", "name": "ts.next", "args": [7], "kwargs": {"a": 1}, "worker": null, "retries": 0, "queue": null, "task_id": "step-1"}';
/** Celery 5.6.3 only: a message with `stamped_headers: ['on']`, `stamps: {on: 'x'}`. */
const CELERY_56_STAMPED =
  '{"status": "SUCCESS", "result": 3, "traceback": null, "children": [], "date_done": "DATE", "group_id": "g-1", "parent_id": "p-1", "name": "ts.add", "args": [1, 2], "kwargs": {"k": "v"}, "worker": "ts7@host", "retries": 2, "queue": "q1", "stamped_headers": ["on"], "on": "x", "task_id": "id-1"}';

const SUCCESS_3 = { kind: 'succeeded', durationMs: 1, result: 3 } as const;

const add = defineTask({ name: 'ts.add', queue: 'q1' }, () => 3);

function message(overrides: Partial<TaskMessage> = {}): TaskMessage {
  return {
    ...add.createMessage({ args: [1, 2], kwargs: { k: 'v' }, id: 'id-1', parentId: 'p-1' }),
    group: 'g-1',
    retries: 2,
    ...overrides,
  };
}

/** The meta as written by a worker named like Celery's capture (`ts7@host`). */
function asCapturedWorker(meta: ResultMeta | null): ResultMeta {
  if (!meta?.extended) throw new Error('expected a meta with extended fields');
  return { ...meta, extended: { ...meta.extended, worker: 'ts7@host' } };
}

/** Celery's text and ours, both as compact JSON: key order and values must match exactly. */
const compact = (text: string) => JSON.stringify(JSON.parse(text));
const withDate = (text: string) => text.replace(/"date_done":"[^"]+"/, '"date_done":"DATE"');

describe('extended result fields', () => {
  it('writes a success as Celery 5.2 and 5.6 do with result_extended', () => {
    // Prepare
    const record = { message: message(), outcome: SUCCESS_3, store: true, children: [] };
    const meta = metaForRecord(record);

    // Act
    const text = resultMetaJson(asCapturedWorker(meta), { extended: true });

    // Assess
    expect(withDate(text)).toBe(compact(CELERY_SUCCESS));
  });

  it('writes a STARTED meta as Celery does with track_started and result_extended', () => {
    // Prepare
    const meta = startedMeta(message(), 42);

    // Act
    const captured = { ...asCapturedWorker(meta), result: { pid: 42, hostname: 'ts7@host' } };
    const text = resultMetaJson(captured, { extended: true });

    // Assess
    expect(text).toBe(compact(CELERY_STARTED));
    expect(meta.result).toEqual({ pid: 42, hostname: WORKER_HOSTNAME });
  });

  it("adds a stamped message's stamps after the queue, as Celery 5.6 does", () => {
    // Prepare
    const stamped = message({ extraHeaders: { stamped_headers: ['on'], stamps: { on: 'x' } } });
    const record = { message: stamped, outcome: SUCCESS_3, store: true, children: [] };
    const meta = metaForRecord(record);

    // Act
    const text = resultMetaJson(asCapturedWorker(meta), { extended: true });

    // Assess
    expect(withDate(text)).toBe(compact(CELERY_56_STAMPED));
  });

  it.each([
    ['no stamps header', {}],
    [
      'empty stamps (Celery 5.6 sends them on every message)',
      { stamped_headers: null, stamps: {} },
    ],
  ])('adds no stamps for %s', (_, extraHeaders) => {
    expect(extendedMeta(message({ extraHeaders })).stamps).toBeUndefined();
  });

  it('writes none of them without the option, as Celery without result_extended', () => {
    // Prepare
    const meta = startedMeta(message(), 42);

    // Act
    const text = resultMetaJson(meta);

    // Assess
    expect(Object.keys(JSON.parse(text))).toEqual([
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

  it("reports our worker's node name, as its events do, and the delivery's routing key", () => {
    const fields = extendedMeta(message({ routingKey: 'delivered-on' }));
    expect(fields).toMatchObject({ worker: WORKER_HOSTNAME, queue: 'delivered-on' });
    expect(WORKER_HOSTNAME).toBe(workerNodeName());
    expect(WORKER_HOSTNAME).toMatch(/^celery@/);
  });
});

describe('chainStepMeta', () => {
  const step = {
    task: 'ts.next',
    args: [7],
    kwargs: { a: 1 },
    options: { task_id: 'step-1', parent_id: 'id-1', root_id: 'id-1', queue: 'q2' },
    subtask_type: null,
    immutable: false,
    chord_size: null,
  };
  const failure: ResultMeta = {
    status: 'FAILURE',
    result: { exc_type: 'Boom', exc_message: ['x'], exc_module: '__main__' },
    traceback: null,
    children: [['child', null]],
    date_done: 'DATE',
    task_id: 'id-1',
    group_id: 'g-1',
    extended: extendedMeta(message()),
  };

  it("writes a failed chain's step as Celery 5.2 and 5.6 do: its own ids, name and args", () => {
    // Act
    const meta = chainStepMeta(failure, step);

    // Assess
    expect(meta && resultMetaJson(meta, { extended: true })).toBe(compact(CELERY_CHAIN_STEP));
  });

  it.each([
    ['a step without a task id', { ...step, options: {} }],
    ['a step that is not a signature', 'ts.next'],
  ])('skips %s, as Celery', (_, odd) => {
    expect(chainStepMeta(failure, odd)).toBeNull();
  });
});

describe('tracksStarted', () => {
  it.each([
    ['the app default when the task sets none', undefined, false, false, true, true],
    ['off by default', undefined, false, false, false, false],
    ["the task's own true over the app's false", true, false, false, false, true],
    ["the task's own false over the app's true", false, false, false, true, false],
    ['never for a task that ignores its result', true, true, false, true, false],
    ['never for a call that ignores its result', true, false, true, true, false],
  ])('follows %s', (_, trackStarted, taskIgnores, callIgnores, byDefault, expected) => {
    // Prepare
    const task = { trackStarted, ignoreResult: taskIgnores };

    // Act
    const tracked = tracksStarted(task, message({ ignoreResult: callIgnores }), byDefault);

    // Assess
    expect(tracked).toBe(expected);
  });
});
