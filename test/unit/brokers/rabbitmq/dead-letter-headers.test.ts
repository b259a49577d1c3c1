/**
 * The dead-letter reason as `x-sc-dead-*` AMQP headers and back, including the shapes amqplib
 * hands back (byte arrays for `x` fields) and headers some other tool wrote or left out.
 */
import { describe, expect, it } from 'vitest';
import {
  deadLetterHeaders,
  readDeadLetterHeaders,
} from '../../../../src/brokers/rabbitmq/dead-letter-headers.js';
import type { DeadLetterReason } from '../../../../src/core/dead-letter.js';

const AT = new Date('2030-01-02T03:04:05.678Z');
const BODY = Buffer.from('[["poison"], {}, {"callbacks": null}]');

const FAILED: DeadLetterReason = {
  reason: 'excluded',
  detail: 'FatalError: bad input',
  task: 'sentry.tasks.do_work',
  id: '38d6a70d-5c49-4042-9a53-c113fce8f83e',
  retries: 2,
  errorType: 'FatalError',
  errorMessage: 'bad input',
};

describe('deadLetterHeaders', () => {
  it('writes every field of the reason, the queue and the time under x-sc-dead-', () => {
    expect(deadLetterHeaders(FAILED, 'alerts', AT)).toEqual({
      'x-sc-dead-reason': 'excluded',
      'x-sc-dead-detail': 'FatalError: bad input',
      'x-sc-dead-task': 'sentry.tasks.do_work',
      'x-sc-dead-id': '38d6a70d-5c49-4042-9a53-c113fce8f83e',
      'x-sc-dead-retries': 2,
      'x-sc-dead-error-type': 'FatalError',
      'x-sc-dead-error-message': 'bad input',
      'x-sc-dead-queue': 'alerts',
      'x-sc-dead-at': '2030-01-02T03:04:05.678Z',
    });
  });

  it('writes null for what is not known, so the header set is always the same', () => {
    const headers = deadLetterHeaders(
      { reason: 'invalid-message', detail: 'pickle', task: null, id: null, retries: null },
      'alerts',
      AT,
    );

    expect(headers).toMatchObject({
      'x-sc-dead-task': null,
      'x-sc-dead-id': null,
      'x-sc-dead-retries': null,
      'x-sc-dead-error-type': null,
      'x-sc-dead-error-message': null,
    });
  });
});

describe('readDeadLetterHeaders', () => {
  it('reads back what deadLetterHeaders wrote, with the body as text', () => {
    const entry = readDeadLetterHeaders(deadLetterHeaders(FAILED, 'alerts', AT), 'ignored', BODY);

    expect(entry).toEqual({
      ...FAILED,
      queue: 'alerts',
      at: '2030-01-02T03:04:05.678Z',
      raw: BODY.toString('utf8'),
    });
  });

  it('reads string headers amqplib hands back as byte arrays', () => {
    const bytes = (text: string) => new Uint8Array(Buffer.from(text));
    const headers = {
      'x-sc-dead-reason': bytes('poison'),
      'x-sc-dead-detail': bytes('crashed 3 times'),
      'x-sc-dead-task': Buffer.from('sentry.tasks.do_work'),
      'x-sc-dead-retries': 0,
    };

    expect(readDeadLetterHeaders(headers, 'alerts', BODY)).toMatchObject({
      reason: 'poison',
      detail: 'crashed 3 times',
      task: 'sentry.tasks.do_work',
      retries: 0,
    });
  });

  it.each([
    ['no headers at all', {}],
    [
      'headers of the wrong types',
      { 'x-sc-dead-reason': 7, 'x-sc-dead-retries': '2', 'x-sc-dead-error-type': { a: 1 } },
    ],
  ])('falls back to defaults for %s, with the queue it was read from', (_, headers) => {
    expect(readDeadLetterHeaders(headers, 'alerts', BODY)).toEqual({
      reason: 'invalid-message',
      detail: '',
      task: null,
      id: null,
      retries: null,
      queue: 'alerts',
      at: '',
      raw: BODY.toString('utf8'),
    });
  });

  it('leaves errorType and errorMessage out when they were null', () => {
    const entry = readDeadLetterHeaders(
      deadLetterHeaders(
        { reason: 'expired', detail: 'late', task: null, id: null, retries: 0 },
        'q',
        AT,
      ),
      'q',
      BODY,
    );

    expect(entry).not.toHaveProperty('errorType');
    expect(entry).not.toHaveProperty('errorMessage');
  });
});
