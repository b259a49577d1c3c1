/**
 * Lambda's Amazon MQ for RabbitMQ event (`aws:rmq`) decoded into task messages: the shared
 * fixture (built from AWS's documented shape around the real Celery capture `amqp-plain`), and
 * hand-built variants for what AWS leaves undocumented (plain strings, arrays, void).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeRmqEvent,
  type RmqEvent,
  type RmqEventMessage,
} from '../../../../src/brokers/rabbitmq/amazon-mq-event.js';
import { decodeAmqpMessage } from '../../../../src/core/amqp-codec.js';
import { expectDecoded, expectDecodeFailure } from '../../../helpers/decode.js';
import {
  type AmqpMessageFixture,
  amqpDeliveryFromFixture,
  loadCeleryFixture,
} from '../../../helpers/fixtures.js';
import { pythonHeaders, WIRE_DEFAULTS } from '../../../helpers/wire.js';

const AWS_FIXTURES_DIR = path.resolve(import.meta.dirname, '../../../../../shared/fixtures/aws');
const ARN = 'arn:aws:mq:us-east-1:123456789012:broker:tasks:b-0000';
const BODY =
  '[["a"], {"n": 1}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]';

function loadRmqEvent(name: string): RmqEvent {
  return JSON.parse(readFileSync(path.join(AWS_FIXTURES_DIR, `${name}.json`), 'utf8')) as RmqEvent;
}

/** A header value as AWS writes it: strings as UTF-8 byte arrays, through arrays and tables. */
function awsValue(value: unknown): unknown {
  if (typeof value === 'string') return { bytes: [...Buffer.from(value, 'utf8')] };
  if (Array.isArray(value)) return value.map(awsValue);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, awsValue(item)]));
  }
  return value;
}

/** One event message with `headers` as given (already in AWS's form or not). */
function rmqMessage(
  headers: Record<string, unknown>,
  overrides: Partial<RmqEventMessage['basicProperties']> = {},
  body = BODY,
): RmqEventMessage {
  return {
    basicProperties: {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers,
      deliveryMode: 2,
      priority: 0,
      correlationId: WIRE_DEFAULTS.id,
      bodySize: Buffer.byteLength(body),
      ...overrides,
    },
    redelivered: false,
    data: Buffer.from(body).toString('base64'),
  };
}

function rmqEvent(byQueue: Record<string, RmqEventMessage[]>): RmqEvent {
  return { eventSource: 'aws:rmq', eventSourceArn: ARN, rmqMessagesByQueue: byQueue };
}

describe('decodeRmqEvent', () => {
  it('decodes the Amazon MQ fixture to the same message as the direct AMQP capture', () => {
    const event = loadRmqEvent('rmq-celery-plain');
    const capture = loadCeleryFixture<AmqpMessageFixture>('amqp-plain');

    const [delivery, ...rest] = decodeRmqEvent(event);

    expect(rest).toEqual([]);
    expect(delivery).toMatchObject({ queue: 'important_queue', vhost: '/', redelivered: false });
    expect(expectDecoded(delivery?.result ?? expect.fail('no delivery'))).toEqual(
      expectDecoded(decodeAmqpMessage(amqpDeliveryFromFixture(capture))),
    );
    expect(delivery?.source).toBe(event.rmqMessagesByQueue['important_queue::/']?.[0]);
  });

  it('reads header strings that arrive as plain strings the same as byte arrays', () => {
    const headers = pythonHeaders({ argsrepr: "['a']", kwargsrepr: "{'n': 1}" });

    const [asBytes] = decodeRmqEvent(
      rmqEvent({ 'q::/': [rmqMessage(awsValue(headers) as never)] }),
    );
    const [asText] = decodeRmqEvent(rmqEvent({ 'q::/': [rmqMessage(headers)] }));

    const message = expectDecoded(asText?.result ?? expect.fail('no delivery'));
    expect(message).toMatchObject({
      task: WIRE_DEFAULTS.task,
      id: WIRE_DEFAULTS.id,
      args: ['a'],
      kwargs: { n: 1 },
      argsrepr: "['a']",
      origin: 'gen1@host',
    });
    expect(expectDecoded(asBytes?.result ?? expect.fail('no delivery'))).toEqual(message);
  });

  it('reads numbers, nulls and byte strings inside arrays and tables', () => {
    const headers = awsValue(
      pythonHeaders({
        timelimit: [300, null],
        eta: '2030-01-02T03:04:05+00:00',
        stamped_headers: ['groups', 'custom'],
        stamps: { custom: ['x', 2] },
      }),
    );

    const [delivery] = decodeRmqEvent(rmqEvent({ 'q::/': [rmqMessage(headers as never)] }));

    const message = expectDecoded(delivery?.result ?? expect.fail('no delivery'));
    expect(message.timeLimit).toEqual([300, null]);
    expect(message.eta).toEqual(new Date('2030-01-02T03:04:05Z'));
    expect(message.extraHeaders).toEqual({
      stamped_headers: ['groups', 'custom'],
      stamps: { custom: ['x', 2] },
    });
  });

  it('hands a pickled message over as a decode failure naming the task, without throwing', () => {
    const headers = awsValue(pythonHeaders()) as Record<string, unknown>;
    const pickled = rmqMessage(
      headers,
      { contentType: 'application/x-python-serialize', contentEncoding: 'binary' },
      '\x80\x04\x95 not json',
    );

    const [delivery] = decodeRmqEvent(rmqEvent({ 'q::/': [pickled] }));

    const failure = expectDecodeFailure(delivery?.result ?? expect.fail('no delivery'));
    expect(failure).toMatchObject({ id: WIRE_DEFAULTS.id, task: WIRE_DEFAULTS.task });
    expect(failure.error.reason).toBe('unsupported-content-type');
    expect(failure.error.message).toMatch(/application\/x-python-serialize/);
  });

  it.each([
    ['important_queue::/', 'important_queue', '/'],
    ['important_queue::sentry', 'important_queue', 'sentry'],
    ['ns::alerts::/', 'ns::alerts', '/'],
    ['bare_queue', 'bare_queue', '/'],
  ])('splits the key %s into queue %s and vhost %s', (key, queue, vhost) => {
    const [delivery] = decodeRmqEvent(rmqEvent({ [key]: [rmqMessage(pythonHeaders())] }));

    expect(delivery).toMatchObject({ queue, vhost });
    expect(expectDecoded(delivery?.result ?? expect.fail('no delivery')).routingKey).toBe(queue);
  });

  it('decodes every message of several queues, in order, keeping each one’s redelivered flag', () => {
    const headers = (id: string) => pythonHeaders({ id, root_id: id });
    const event = rmqEvent({
      'alerts::/': [
        rmqMessage(headers('a-1')),
        { ...rmqMessage(headers('a-2')), redelivered: true },
      ],
      'events::/': [rmqMessage(headers('e-1'))],
    });

    const deliveries = decodeRmqEvent(event);

    expect(
      deliveries.map((delivery) => [
        delivery.queue,
        expectDecoded(delivery.result).id,
        delivery.redelivered,
        expectDecoded(delivery.result).redelivered,
      ]),
    ).toEqual([
      ['alerts', 'a-1', false, false],
      ['alerts', 'a-2', true, true],
      ['events', 'e-1', false, false],
    ]);
  });

  it('returns nothing for an event without messages', () => {
    expect(decodeRmqEvent(rmqEvent({}))).toEqual([]);
  });
});
