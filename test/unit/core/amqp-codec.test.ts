import { describe, expect, it } from 'vitest';
import { decodeAmqpMessage, encodeAmqpMessage } from '../../../src/core/amqp-codec.js';
import { createTaskMessage } from '../../../src/core/message.js';
import { expectDecoded } from '../../helpers/decode.js';

const message = createTaskMessage({ task: 'sentry.tasks.do_work', queue: 'events' });

function delivered(routingKey: string, extraHeaders: Record<string, unknown> = {}) {
  const { content, options } = encodeAmqpMessage(message);
  return decodeAmqpMessage({
    content,
    fields: { exchange: 'celery_delayed_delivery', routingKey, redelivered: false },
    properties: { ...options, headers: { ...options.headers, ...extraHeaders } },
  });
}

describe('decodeAmqpMessage after RabbitMQ handled the message', () => {
  it('strips the 28-digit delay prefix from a routing key back from the delay levels', () => {
    const key = `${'0.'.repeat(27)}1.events`;

    expect(expectDecoded(delivered(key)).routingKey).toBe('events');
  });

  it('keeps a routing key that only looks a little like a delay prefix', () => {
    expect(expectDecoded(delivered('0.1.events')).routingKey).toBe('0.1.events');
  });

  it('drops the headers RabbitMQ adds, so a retry does not carry them on', () => {
    const decoded = expectDecoded(
      delivered('events', {
        'x-death': [{ count: 1, queue: 'celery_delayed_0', reason: 'expired' }],
        'x-first-death-queue': 'celery_delayed_0',
        'x-first-death-reason': 'expired',
        'x-first-death-exchange': 'celery_delayed_0',
        'x-last-death-queue': 'celery_delayed_0',
        'x-last-death-reason': 'expired',
        'x-last-death-exchange': 'celery_delayed_0',
        'x-delivery-count': 2,
        stamps: { kept: true },
      }),
    );

    expect(decoded.extraHeaders).toEqual({ stamps: { kept: true } });
  });
});
