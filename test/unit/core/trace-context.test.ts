import { describe, expect, it } from 'vitest';
import { decodeAmqpMessage, encodeAmqpMessage } from '../../../src/core/amqp-codec.js';
import { chain, deterministicId } from '../../../src/core/canvas.js';
import { continuationsFor } from '../../../src/core/continuations.js';
import type { JsonObject } from '../../../src/core/json.js';
import { createTaskMessage, type TaskMessage } from '../../../src/core/message.js';
import { decodeRedisMessage, encodeRedisMessage } from '../../../src/core/redis-codec.js';
import { settlementFor } from '../../../src/core/settlement.js';
import type { SignatureDict } from '../../../src/core/signature.js';
import {
  SENT_HEADER,
  traceContextFromXRay,
  traceContextOf,
  traceIdsOf,
  withTraceContext,
} from '../../../src/core/trace-context.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const XRAY = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
const SENTRY = {
  'sentry-trace': '771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1',
  baggage: 'sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-environment=prod',
};
const route = () => 'celery';

const sig = (task: string, options: JsonObject = {}): SignatureDict => ({
  task,
  args: [],
  kwargs: {},
  options,
  subtask_type: null,
  immutable: false,
});

/** Encodes for a broker and decodes back, as a consumer receives it. */
function overTheWire(message: TaskMessage, broker: 'redis' | 'rabbitmq'): TaskMessage {
  if (broker === 'redis') {
    const decoded = decodeRedisMessage(encodeRedisMessage(message).envelope);
    if (!decoded.ok) throw decoded.error;
    return decoded.message;
  }
  const { content, options } = encodeAmqpMessage(message);
  const decoded = decodeAmqpMessage({
    content,
    fields: { exchange: '', routingKey: message.routingKey, redelivered: false },
    properties: options,
  });
  if (!decoded.ok) throw decoded.error;
  return decoded.message;
}

describe('traceContextFromXRay', () => {
  it('keeps the AWS header and derives the W3C traceparent of the same trace', () => {
    expect(traceContextFromXRay(XRAY)).toEqual({
      'X-Amzn-Trace-Id': XRAY,
      traceparent: '00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01',
    });
  });

  it.each([
    ['no header', undefined, {}],
    [
      'a header without a parent',
      'Root=1-5759e988-bd862e3fe1be46a994272793',
      { 'X-Amzn-Trace-Id': 'Root=1-5759e988-bd862e3fe1be46a994272793' },
    ],
    [
      'an unsampled trace',
      'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0',
      { traceparent: '00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00' },
    ],
  ])('reads %s', (_, header, expected) => {
    expect(traceContextFromXRay(header)).toMatchObject(expected);
  });
});

describe('traceIdsOf', () => {
  it.each([
    [
      'traceparent',
      { traceparent: TRACEPARENT },
      '4bf92f3577b34da6a3ce929d0e0e4736',
      '00f067aa0ba902b7',
    ],
    [
      'the AWS header',
      { 'X-Amzn-Trace-Id': XRAY },
      '5759e988bd862e3fe1be46a994272793',
      '53995c3f42cd8ad8',
    ],
    ['sentry-trace', SENTRY, '771a43a4192642f0b136d5159a501700', 'b7ad6b7169203331'],
    [
      'traceparent over the others',
      { ...SENTRY, 'X-Amzn-Trace-Id': XRAY, traceparent: TRACEPARENT },
      '4bf92f3577b34da6a3ce929d0e0e4736',
      '00f067aa0ba902b7',
    ],
  ])('reads the trace id from %s', (_, context, traceId, parentSpanId) => {
    expect(traceIdsOf(context)).toEqual({ traceId, parentSpanId });
  });

  it('reads no trace from a malformed traceparent alone', () => {
    expect(traceIdsOf({ traceparent: 'not-a-trace' })).toBeNull();
  });
});

describe('withTraceContext', () => {
  it('records the context on the message and in every signature of its embed', () => {
    // Prepare
    const message = createTaskMessage({
      task: 'a',
      queue: 'q',
      embed: {
        callbacks: [sig('cb') as unknown as JsonObject],
        errbacks: null,
        chain: [sig('c2', { queue: 'py' }) as unknown as JsonObject],
        chord: null,
      },
    });
    const sentAt = new Date('2026-01-01T00:00:00Z');

    // Act
    const traced = withTraceContext(message, { traceparent: TRACEPARENT }, sentAt);

    // Assess
    expect(traced.extraHeaders).toEqual({
      traceparent: TRACEPARENT,
      // What a Celery worker's retry() re-sends (Context.headers).
      headers: { traceparent: TRACEPARENT },
      [SENT_HEADER]: sentAt.toISOString(),
    });
    expect(traced.embed.callbacks?.[0]).toMatchObject({
      options: { headers: { traceparent: TRACEPARENT } },
    });
    expect(traced.embed.chain?.[0]).toMatchObject({
      options: { queue: 'py', headers: { traceparent: TRACEPARENT } },
    });
  });

  it('never overwrites a context the message or a signature already has', () => {
    // Prepare
    const own = '00-11111111111111111111111111111111-2222222222222222-01';
    const message = {
      ...createTaskMessage({
        task: 'a',
        queue: 'q',
        embed: {
          callbacks: null,
          errbacks: null,
          chain: [sig('c', { headers: { traceparent: own } }) as unknown as JsonObject],
          chord: null,
        },
      }),
      extraHeaders: { traceparent: own },
    };

    // Act
    const traced = withTraceContext(message, { traceparent: TRACEPARENT });

    // Assess
    expect(traced.extraHeaders.traceparent).toBe(own);
    expect(traced.extraHeaders.headers).toEqual({ traceparent: own });
    expect(traced.embed.chain?.[0]).toMatchObject({ options: { headers: { traceparent: own } } });
  });
});

describe('a trace context on the wire', () => {
  it.each(['redis', 'rabbitmq'] as const)(
    'survives decode, retry and re-encode on %s, with Sentry headers byte for byte',
    (broker) => {
      // Prepare: what a Sentry-instrumented Python producer writes, nested `headers` included.
      const sentry = { ...SENTRY, headers: { ...SENTRY } };
      const message = {
        ...createTaskMessage({ task: 'a', queue: 'q' }),
        extraHeaders: { traceparent: TRACEPARENT, ...sentry },
      };

      // Act
      const received = overTheWire(message, broker);
      const settlement = settlementFor(
        {
          kind: 'retry',
          dueAt: new Date().toISOString(),
          errorType: 'E',
          errorMessage: 'm',
          durationMs: 1,
        },
        received,
      );
      if (settlement.kind !== 'retry-later') throw new Error(settlement.kind);
      const retried = overTheWire(settlement.message, broker);

      // Assess
      expect(retried.retries).toBe(1);
      expect(traceContextOf(retried)).toEqual({ traceparent: TRACEPARENT, ...SENTRY });
      expect(retried.extraHeaders.headers).toEqual(SENTRY);
    },
  );

  it('carries into the next chain step, and into the steps after it for a Python worker to send', () => {
    // Prepare: a three-step chain whose first message was traced at the producer.
    const steps = chain(sig('s1'), sig('s2'), sig('s3'));
    const first = createTaskMessage({
      task: 's1',
      queue: 'q',
      embed: {
        callbacks: null,
        errbacks: null,
        chain: (steps.kwargs.tasks as JsonObject[]).slice(1).reverse(),
        chord: null,
      },
    });
    const traced = overTheWire(withTraceContext(first, { traceparent: TRACEPARENT }), 'redis');

    // Act
    const { messages } = continuationsFor({ kind: 'succeeded', durationMs: 1, result: 3 }, traced, {
      route,
      now: new Date('2026-01-01T00:00:00Z'),
    });

    // Assess
    const [next] = messages as [TaskMessage];
    expect(next.task).toBe('s2');
    expect(next.id).toBe(deterministicId(`${traced.id}/chain`));
    expect(traceContextOf(next)).toEqual({ traceparent: TRACEPARENT });
    expect(next.extraHeaders[SENT_HEADER]).toBe('2026-01-01T00:00:00.000Z');
    expect(next.embed.chain?.[0]).toMatchObject({
      task: 's3',
      options: { headers: { traceparent: TRACEPARENT } },
    });
  });
});
