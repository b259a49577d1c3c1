import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../../src/brokers/broker.js';
import {
  describeOutcome,
  formatOutcomeLine,
  workerEventLine,
} from '../../../src/cli/local-report.js';
import { InvalidMessageError } from '../../../src/core/errors.js';
import { createTaskMessage } from '../../../src/core/message.js';
import type { DispatchOutcome } from '../../../src/worker/dispatch.js';

const NOW = Date.parse('2025-01-01T12:00:00.000Z');
const reason = {
  reason: 'excluded',
  detail: 'TypeError: no payload',
  task: 'ingest.save_event',
  id: 'id-1',
  retries: 0,
} as const;

describe('describeOutcome', () => {
  it.each<[DispatchOutcome, string]>([
    [{ kind: 'succeeded', durationMs: 3 }, 'succeeded'],
    [
      { kind: 'ignored', errorType: 'EventNotFoundError', durationMs: 1 },
      'ignored (EventNotFoundError)',
    ],
    [{ kind: 'duplicate', why: 'already-done', durationMs: 1 }, 'skipped: already-done'],
    [
      {
        kind: 'retry',
        dueAt: '2025-01-01T12:00:01.500Z',
        errorType: 'StoreUnavailableError',
        errorMessage: 'store busy',
        durationMs: 2,
      },
      'retry in 1.5s (StoreUnavailableError: store busy)',
    ],
    [
      { kind: 'not-due', dueAt: '2025-01-01T13:00:00.000Z' },
      'parked until 2025-01-01T13:00:00.000Z (eta)',
    ],
    [{ kind: 'dead', reason, durationMs: 1 }, 'dead-lettered: excluded (TypeError: no payload)'],
    [
      { kind: 'invalid', detail: 'body is not JSON' },
      'dead-lettered: invalid message (body is not JSON)',
    ],
    [
      { kind: 'invoke-failed', detail: 'InvokeError: throttled', failures: 2, dead: false },
      'invoke failed (2), re-queued: InvokeError: throttled',
    ],
    [
      { kind: 'invoke-failed', detail: 'InvokeError: throttled', failures: 5, dead: true },
      'dead-lettered: poison after 5 failed invokes (InvokeError: throttled)',
    ],
  ])('describes %j as "%s"', (outcome, text) => {
    expect(describeOutcome(outcome, NOW)).toBe(text);
  });
});

describe('workerEventLine', () => {
  it('names the task, id and attempt (retries + 1), with the run time', () => {
    const message = {
      ...createTaskMessage({ task: 'ingest.save_event', queue: 'events' }),
      retries: 2,
    };
    const delivery: Delivery = {
      queue: 'events',
      redelivered: false,
      result: { ok: true, message },
    };

    const line = workerEventLine({
      queue: 'events',
      delivery,
      outcome: { kind: 'succeeded', durationMs: 12.4 },
    });

    expect(line).toEqual({
      task: 'ingest.save_event',
      id: message.id,
      attempt: 3,
      outcome: 'succeeded',
      durationMs: 12.4,
    });
  });

  it('shows what it could read of a message that did not decode', () => {
    const delivery: Delivery = {
      queue: 'events',
      redelivered: false,
      result: {
        ok: false,
        error: new InvalidMessageError('malformed-body', 'body is not JSON'),
        id: 'id-9',
        task: null,
      },
    };

    const line = workerEventLine({
      queue: 'events',
      delivery,
      outcome: { kind: 'invalid', detail: 'body is not JSON' },
    });

    expect(line).toEqual({
      task: '?',
      id: 'id-9',
      attempt: null,
      outcome: 'dead-lettered: invalid message (body is not JSON)',
    });
  });
});

describe('formatOutcomeLine', () => {
  it('lays out time, task, id, attempt, outcome and duration on one line', () => {
    const at = new Date(2025, 0, 1, 9, 5, 7);

    const text = formatOutcomeLine(
      { task: 'ingest.save_event', id: 'abc', attempt: 1, outcome: 'succeeded', durationMs: 12.6 },
      at,
    );

    expect(text).toBe('09:05:07  ingest.save_event  abc  attempt 1  succeeded  13 ms');
  });
});
