import { describe, expect, it } from 'vitest';
import { createTaskMessage } from '../../../src/core/message.js';
import {
  type ControlRequest,
  controlReply,
  type InspectedWorker,
  isAddressedTo,
  parseControlRequest,
} from '../../../src/core/remote-control.js';

/** What `celery inspect ping -d a@h` publishes (kombu `Mailbox._publish`). */
const PING = {
  method: 'ping',
  arguments: {},
  destination: null,
  pattern: null,
  matcher: null,
  ticket: 'ticket-1',
  reply_to: { exchange: 'reply.celery.pidbox', routing_key: 'oid-1' },
};

function request(overrides: Record<string, unknown> = {}): ControlRequest {
  const parsed = parseControlRequest({ ...PING, ...overrides });
  if (!parsed) throw new Error('not a request');
  return parsed;
}

const MESSAGE = createTaskMessage({
  task: 'orders.charge',
  queue: 'orders',
  args: ['order-1'],
  kwargs: { attempt: 2 },
});
const WORKER: InspectedWorker = {
  hostname: 'celery@box',
  pid: 42,
  active: () => [{ message: MESSAGE, startedAt: 1_500 }],
  registered: () => ['orders.refund', 'orders.charge'],
};

describe('parseControlRequest', () => {
  it("reads kombu's request, with where to reply", () => {
    expect(request()).toEqual({
      method: 'ping',
      arguments: {},
      destination: null,
      pattern: null,
      matcher: null,
      replyTo: { exchange: 'reply.celery.pidbox', routingKey: 'oid-1' },
      ticket: 'ticket-1',
    });
  });

  it('is undefined for anything without a method', () => {
    expect(parseControlRequest({ arguments: {} })).toBeUndefined();
    expect(parseControlRequest('ping')).toBeUndefined();
    expect(parseControlRequest(null)).toBeUndefined();
  });

  it('expects no reply without reply_to (a control command cast to every worker)', () => {
    expect(request({ reply_to: undefined, ticket: undefined })).toMatchObject({
      replyTo: null,
      ticket: null,
    });
  });
});

describe('isAddressedTo', () => {
  it('takes requests for every node, or naming this one', () => {
    expect(isAddressedTo(request(), 'celery@box')).toBe(true);
    expect(isAddressedTo(request({ destination: ['a@x', 'celery@box'] }), 'celery@box')).toBe(true);
    expect(isAddressedTo(request({ destination: ['a@x'] }), 'celery@box')).toBe(false);
  });

  it("matches kombu's glob and pcre patterns", () => {
    const glob = (pattern: string) => request({ pattern, matcher: 'glob' });
    const pcre = (pattern: string) => request({ pattern, matcher: 'pcre' });

    expect(isAddressedTo(glob('celery@b?x'), 'celery@box')).toBe(true);
    expect(isAddressedTo(glob('*@box'), 'celery@box')).toBe(true);
    expect(isAddressedTo(glob('*.box'), 'celery@box')).toBe(false);
    expect(isAddressedTo(pcre('celery@.*'), 'celery@box')).toBe(true);
    expect(isAddressedTo(pcre('box'), 'celery@box')).toBe(false);
    expect(isAddressedTo(pcre('('), 'celery@box')).toBe(false);
    expect(isAddressedTo(request({ pattern: 'x', matcher: 'other' }), 'celery@box')).toBe(false);
  });
});

describe('controlReply', () => {
  it("answers ping as Celery's ok('pong')", () => {
    expect(controlReply(request(), WORKER)).toEqual({ ok: 'pong' });
  });

  it("lists running tasks as Celery's Request.info(), values or with safe their reprs", () => {
    const info = {
      id: MESSAGE.id,
      name: 'orders.charge',
      args: ['order-1'],
      kwargs: { attempt: 2 },
      type: 'orders.charge',
      hostname: 'celery@box',
      time_start: 1.5,
      acknowledged: false,
      delivery_info: { exchange: '', routing_key: 'orders', priority: 0, redelivered: false },
      worker_pid: 42,
    };

    expect(controlReply(request({ method: 'active' }), WORKER)).toEqual([info]);
    expect(controlReply(request({ method: 'active', arguments: { safe: true } }), WORKER)).toEqual([
      { ...info, args: MESSAGE.argsrepr, kwargs: MESSAGE.kwargsrepr },
    ]);
  });

  it('lists registered task names, sorted', () => {
    expect(controlReply(request({ method: 'registered' }), WORKER)).toEqual([
      'orders.charge',
      'orders.refund',
    ]);
  });

  it('answers any other command with an error naming it', () => {
    expect(controlReply(request({ method: 'stats' }), WORKER)).toEqual({
      error: expect.stringContaining('No such control command: stats'),
    });
  });
});
