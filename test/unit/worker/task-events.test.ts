/**
 * The one mapping from a settled message's outcome to Celery's events: what State then shows.
 */
import { describe, expect, it } from 'vitest';
import type { DeadLetterReason, DeadLetterReasonCode } from '../../../src/core/dead-letter.js';
import { createTaskMessage } from '../../../src/core/message.js';
import type { DispatchOutcome } from '../../../src/worker/events.js';
import { announcesReceipt, outcomeEvents } from '../../../src/worker/task-events.js';

const message = createTaskMessage({ task: 'app.work', queue: 'q', args: [1] });
const reason = (
  code: DeadLetterReasonCode,
  extra: Partial<DeadLetterReason> = {},
): DeadLetterReason => ({
  reason: code,
  detail: `${code} happened`,
  task: 'app.work',
  id: message.id,
  retries: 0,
  ...extra,
});

describe('outcomeEvents', () => {
  it.each<[string, DispatchOutcome, string[], Record<string, unknown>]>([
    [
      'a success, with its result and runtime',
      { kind: 'succeeded', durationMs: 1500, result: { ok: true } },
      ['task-succeeded'],
      { result: "{'ok': True}", runtime: 1.5 },
    ],
    [
      'a success whose result was not carried',
      { kind: 'succeeded', durationMs: 2 },
      ['task-succeeded'],
      { result: 'None' },
    ],
    [
      'an ignored error',
      { kind: 'ignored', errorType: 'Skip', durationMs: 3 },
      ['task-succeeded'],
      { result: 'None' },
    ],
    [
      'a duplicate run',
      { kind: 'duplicate', why: 'already-done', durationMs: 0 },
      ['task-succeeded'],
      {},
    ],
    [
      'a retry',
      {
        kind: 'retry',
        dueAt: '2026-01-01T00:00:00Z',
        errorType: 'TimeoutError',
        errorMessage: 'slow',
        durationMs: 4,
      },
      ['task-retried'],
      { exception: "TimeoutError('slow')", traceback: 'TimeoutError: slow' },
    ],
    [
      'a failure for good',
      {
        kind: 'dead',
        reason: reason('not-retryable', { errorType: 'TypeError', errorMessage: 'bad' }),
        durationMs: 5,
      },
      ['task-failed'],
      { exception: "TypeError('bad')" },
    ],
    [
      'an unknown task',
      { kind: 'dead', reason: reason('unknown-task'), durationMs: 0 },
      ['task-failed'],
      { exception: "NotRegistered('app.work')" },
    ],
    [
      'an expired message',
      { kind: 'dead', reason: reason('expired'), durationMs: 0 },
      ['task-revoked'],
      { expired: true },
    ],
    [
      'an unsupported workflow',
      { kind: 'dead', reason: reason('unsupported-workflow'), durationMs: 0 },
      ['task-rejected'],
      { requeue: false },
    ],
    [
      'a failed invoke, re-queued',
      { kind: 'invoke-failed', detail: 'Error: crash', failures: 1, dead: false },
      ['task-retried'],
      { exception: "WorkerLostError('Error: crash')" },
    ],
    [
      'a failed invoke at the poison cap',
      { kind: 'invoke-failed', detail: 'Error: crash', failures: 5, dead: true },
      ['task-failed'],
      {},
    ],
    [
      'a message put back unrun',
      { kind: 'released', detail: 'deadline' },
      ['task-rejected'],
      { requeue: true },
    ],
    ['a message not yet due', { kind: 'not-due', dueAt: '2026-01-01T00:00:00Z' }, [], {}],
  ])('announces %s', (_name, outcome, types, fields) => {
    // Act
    const drafts = outcomeEvents(message, outcome);

    // Assess
    expect(drafts.map((draft) => draft.type)).toEqual(types);
    if (drafts[0]) expect(drafts[0].fields).toMatchObject({ uuid: message.id, ...fields });
  });
});

describe('announcesReceipt', () => {
  it('announces every message but those not yet due or undecodable', () => {
    expect(announcesReceipt(undefined)).toBe(true);
    expect(announcesReceipt({ kind: 'dead', reason: reason('expired'), durationMs: 0 })).toBe(true);
    expect(announcesReceipt({ kind: 'not-due', dueAt: '2026-01-01T00:00:00Z' })).toBe(false);
    expect(announcesReceipt({ kind: 'invalid', detail: 'pickle' })).toBe(false);
  });
});
