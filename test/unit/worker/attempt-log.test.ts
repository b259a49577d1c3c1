import { describe, expect, it } from 'vitest';
import { createTaskMessage, type TaskMessage } from '../../../src/core/message.js';
import { SENT_HEADER } from '../../../src/core/trace-context.js';
import {
  attemptJsonLine,
  attemptLevel,
  attemptRecord,
  ERROR_MESSAGE_MAX,
} from '../../../src/worker/attempt-log.js';
import type { DispatchOutcome } from '../../../src/worker/events.js';

const SETTLED = new Date('2026-01-01T00:00:10.000Z');
const dead = (errorType?: string): DispatchOutcome => ({
  kind: 'dead',
  durationMs: 4,
  reason: {
    reason: errorType ? 'not-retryable' : 'expired',
    detail: 'expired at 00:00:00',
    task: 't',
    id: 'i',
    retries: 0,
    ...(errorType ? { errorType, errorMessage: 'boom' } : {}),
  },
});

const inputOf = (message: TaskMessage, outcome: DispatchOutcome) => ({
  queue: 'q',
  delivery: { result: { ok: true as const, message } },
  outcome,
});

describe('attemptRecord', () => {
  it.each([
    ['a success', { kind: 'succeeded', durationMs: 5 }, 'info', null, null],
    [
      'a retry',
      {
        kind: 'retry',
        durationMs: 5,
        dueAt: SETTLED.toISOString(),
        errorType: 'E',
        errorMessage: 'busy',
      },
      'warn',
      'E',
      'busy',
    ],
    [
      'an ignored failure',
      { kind: 'ignored', durationMs: 5, errorType: 'Gone' },
      'info',
      'Gone',
      null,
    ],
    ['a failure', dead('TypeError'), 'error', 'TypeError', 'boom'],
    ['an expiry', dead(), 'error', null, 'expired at 00:00:00'],
    [
      'an invoke failure',
      { kind: 'invoke-failed', detail: 'throttled', failures: 1, dead: false },
      'warn',
      null,
      'throttled',
    ],
    [
      'a poison message',
      { kind: 'invoke-failed', detail: 'throttled', failures: 5, dead: true },
      'error',
      null,
      'throttled',
    ],
  ] as const)(
    'logs %s at its level with its error',
    (_, outcome, level, errorType, errorMessage) => {
      // Prepare
      const message = createTaskMessage({ task: 't', queue: 'q', kwargs: { password: 'p4ss' } });

      // Act
      const record = attemptRecord(inputOf(message, outcome as DispatchOutcome), SETTLED);

      // Assess
      expect(attemptLevel(outcome as DispatchOutcome)).toBe(level);
      expect(record).toMatchObject({
        outcome: outcome.kind,
        error_type: errorType,
        error_message: errorMessage,
      });
      expect(JSON.stringify(record)).not.toContain('p4ss');
    },
  );

  it.each([
    ['the eta when there is one', '2026-01-01T00:00:02.000Z', '2026-01-01T00:00:00.000Z', 3_000],
    ['the send time without an eta', null, '2026-01-01T00:00:00.000Z', 5_000],
    ['nothing without either', null, null, null],
  ])('counts the delay from %s', (_, eta, sent, delay) => {
    // Prepare: the run took 5 s and ended at 00:00:10, so it started at 00:00:05.
    const message = {
      ...createTaskMessage({ task: 't', queue: 'q', ...(eta ? { eta: new Date(eta) } : {}) }),
      extraHeaders: sent ? { [SENT_HEADER]: sent } : {},
    };

    // Act
    const record = attemptRecord(
      inputOf(message, { kind: 'succeeded', durationMs: 5_000 }),
      SETTLED,
    );

    // Assess
    expect(record.delay_ms).toBe(delay);
  });

  it('keeps what is known of an undecodable message, and cuts long errors', () => {
    // Act
    const line = attemptJsonLine(
      {
        queue: 'q',
        delivery: { result: { ok: false, error: new Error('x') as never, id: 'i1', task: 't1' } },
        outcome: { kind: 'invalid', detail: 'y'.repeat(5_000) },
      },
      SETTLED,
    );

    // Assess
    const parsed = JSON.parse(line);
    expect(parsed).toMatchObject({
      level: 'ERROR',
      task: 't1',
      id: 'i1',
      outcome: 'invalid',
      retries: null,
    });
    expect(parsed.error_message).toHaveLength(ERROR_MESSAGE_MAX);
  });
});
