import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type EventDraft,
  eventGroup,
  eventRoutingKey,
  taskFailed,
  taskNotRegistered,
  taskReceived,
  taskRejected,
  taskRetried,
  taskRevoked,
  taskSent,
  taskStarted,
  taskSucceeded,
  workerEvent,
} from '../../../src/core/celery-events.js';
import {
  celeryNodeName,
  celeryUtcOffset,
  EVENTS_PER_MESSAGE,
  EventStamper,
  eventMessages,
  LamportClock,
  workerNodeName,
} from '../../../src/core/event-dispatcher.js';
import { createTaskMessage } from '../../../src/core/message.js';

const NOW = new Date('2026-12-05T08:00:00.000Z');
const MESSAGE = {
  ...createTaskMessage(
    {
      task: 'orders.charge',
      queue: 'orders',
      args: ['order-1'],
      eta: new Date('2026-12-05T09:00:00.250Z'),
      expires: 3600,
    },
    NOW,
  ),
  retries: 2,
  argsrepr: "['order-1']",
  kwargsrepr: '{}',
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe('event constructors', () => {
  it.each([
    [
      'task-sent',
      taskSent(MESSAGE),
      ['uuid', 'root_id', 'parent_id', 'name', 'args', 'kwargs', 'retries', 'eta', 'expires'],
    ],
    [
      'task-received',
      taskReceived(MESSAGE),
      ['uuid', 'name', 'args', 'kwargs', 'root_id', 'parent_id', 'retries', 'eta', 'expires'],
    ],
    ['task-started', taskStarted('t1'), ['uuid']],
    ['task-succeeded', taskSucceeded('t1', 1, 0.5), ['uuid', 'result', 'runtime']],
    ['task-failed', taskFailed('t1', new Error('x')), ['uuid', 'exception', 'traceback']],
    ['task-failed', taskNotRegistered('t1', 'nope'), ['uuid', 'exception']],
    ['task-retried', taskRetried('t1', new Error('x')), ['uuid', 'exception', 'traceback']],
    ['task-rejected', taskRejected('t1', false), ['uuid', 'requeue']],
    [
      'task-revoked',
      taskRevoked('t1', { expired: true }),
      ['uuid', 'terminated', 'signum', 'expired'],
    ],
  ])('builds %s with the fields Celery sends', (type, draft, fields) => {
    expect(draft.type).toBe(type);
    expect(Object.keys(draft.fields).slice(0, fields.length)).toEqual(fields);
  });

  it('takes task-received values from the message as a Celery Request reads them', () => {
    expect(taskReceived(MESSAGE).fields).toEqual({
      uuid: MESSAGE.id,
      name: 'orders.charge',
      args: "['order-1']",
      kwargs: '{}',
      root_id: MESSAGE.id,
      parent_id: null,
      retries: 2,
      eta: '2026-12-05T09:00:00.250000+00:00',
      expires: '2026-12-05T09:00:00+00:00',
    });
  });

  it('adds the route to task-sent, as send_task_message does', () => {
    expect(taskSent(MESSAGE).fields).toMatchObject({
      queue: 'orders',
      exchange: '',
      routing_key: 'orders',
    });
  });

  it('writes results, exceptions and the unknown task name as Python reprs', () => {
    expect(taskSucceeded('t1', { ok: true }, 0.25).fields).toMatchObject({
      result: "{'ok': True}",
      runtime: 0.25,
    });
    expect(taskFailed('t1', new RangeError('too big')).fields.exception).toBe(
      "RangeError('too big')",
    );
    expect(taskNotRegistered('t1', 'orders.nope').fields.exception).toBe(
      "NotRegistered('orders.nope')",
    );
  });

  it('fills worker events with Celery heartbeat defaults', () => {
    const draft = workerEvent('heartbeat', { active: 1, processed: 9, loadavg: [0.5, 0.25, 0] });

    expect(draft).toEqual({
      type: 'worker-heartbeat',
      fields: {
        freq: 2,
        active: 1,
        processed: 9,
        loadavg: [0.5, 0.25, 0],
        sw_ident: 'serverless-celery',
        sw_ver: 'unknown',
        sw_sys: expect.any(String),
      },
    });
  });

  it.each([
    ['task-succeeded', 'task.succeeded', 'task'],
    ['worker-heartbeat', 'worker.heartbeat', 'worker'],
    ['custom-my-event', 'custom.my.event', 'custom'],
  ])('routes %s as %s in group %s', (type, routingKey, group) => {
    expect(eventRoutingKey(type)).toBe(routingKey);
    expect(eventGroup(type)).toBe(group);
  });
});

describe('EventStamper', () => {
  it("stamps in the key order of Python's Event() and moves the clock each time", () => {
    const clock = new LamportClock(10);
    const stamper = new EventStamper({ hostname: 'fn@env', pid: 7, clock, now: () => 1500 });

    const first = stamped(stamper, taskStarted('t1'));
    const second = stamped(stamper, taskStarted('t2'));

    expect(Object.keys(first)).toEqual([
      'hostname',
      'utcoffset',
      'pid',
      'clock',
      'uuid',
      'timestamp',
      'type',
    ]);
    expect(first).toMatchObject({ hostname: 'fn@env', pid: 7, clock: 11, timestamp: 1.5 });
    expect(second.clock).toBe(12);
  });

  it('keeps a given timestamp and drops fields that would shadow the stamp', () => {
    const stamper = new EventStamper({ hostname: 'fn@env', pid: 7, now: () => 1500 });

    const event = stamped(stamper, {
      type: 'task-started',
      fields: { uuid: 't1', hostname: 'spoof', pid: 1, timestamp: 99 },
    });

    expect(event).toEqual({
      hostname: 'fn@env',
      utcoffset: celeryUtcOffset(new Date(1500)),
      pid: 7,
      clock: expect.any(Number),
      uuid: 't1',
      timestamp: 99,
      type: 'task-started',
    });
  });

  it('dates a draft by its `at`, unless its fields give a timestamp', () => {
    const stamper = new EventStamper({ hostname: 'fn@env', now: () => 9000 });

    expect(stamped(stamper, { ...taskStarted('t1'), at: 1500 }).timestamp).toBe(1.5);
    expect(stamped(stamper, taskStarted('t1')).timestamp).toBe(9);
  });

  it('writes the same JSON text as stringifying the event object would', () => {
    const stamper = new EventStamper({ hostname: 'fn "quoted" @env', pid: 7, now: () => 1234.5 });
    const received = stamper.stamp(taskReceived(MESSAGE));
    const parsed = JSON.parse(received.json) as Record<string, unknown>;

    expect(received.json).toBe(JSON.stringify(parsed));
    expect(parsed).toMatchObject({ hostname: 'fn "quoted" @env', name: 'orders.charge' });
    expect(received.type).toBe('task-received');
  });
});

describe('LamportClock', () => {
  it('adjusts to max(own, other) + 1', () => {
    const clock = new LamportClock(3);

    expect(clock.adjust(10)).toBe(11);
    expect(clock.adjust(2)).toBe(12);
    expect(clock.forward()).toBe(13);
  });
});

describe('celeryUtcOffset', () => {
  it.each([
    ['UTC', 0, 0],
    ['UTC+2 (getTimezoneOffset -120)', -120, -2],
    ['UTC-5 (getTimezoneOffset 300)', 300, 5],
    ['UTC+5:30 (floor division)', -330, -6],
  ])('is %s → %i hours west', (_zone, minutesWest, expected) => {
    const date = new Date();
    vi.spyOn(date, 'getTimezoneOffset').mockReturnValue(minutesWest);

    expect(celeryUtcOffset(date)).toBe(expected);
  });
});

describe('celeryNodeName', () => {
  it.each([
    ['worker1@%h', 'worker1@box.example.com'],
    ['worker1@%n', 'worker1@box'],
    ['%n@%d', 'box@example.com'],
    ['box2', 'celery@box2'],
    ['%h', 'celery@box.example.com'],
    ['@%n', 'celery@box'],
    ['w@', 'w@box.example.com'],
    ['100%%@%n', '100%@box'],
  ])("expands %s as Celery's -n does", (given, expected) => {
    expect(celeryNodeName(given, 'box.example.com')).toBe(expected);
  });
});

describe('workerNodeName', () => {
  it('names a Lambda environment <function>@<environment id>', () => {
    const env = {
      AWS_LAMBDA_FUNCTION_NAME: 'orders-worker',
      AWS_LAMBDA_LOG_STREAM_NAME: '2026/12/05/[$LATEST]0123456789abcdef0123456789abcdef',
    };

    expect(workerNodeName(env)).toBe('orders-worker@0123456789ab');
  });

  it("names any other process celery@<host>, Celery's default", () => {
    expect(workerNodeName({})).toMatch(/^celery@.+/);
  });
});

describe('eventMessages', () => {
  const stamperAt = (clock: number) =>
    new EventStamper({
      hostname: 'fn@env',
      pid: 7,
      now: () => 1000,
      clock: new LamportClock(clock),
    });
  const drafts = [
    taskReceived(MESSAGE),
    workerEvent('heartbeat', { active: 0, processed: 0 }),
    taskStarted(MESSAGE.id),
  ];
  /** The events as stamped one by one, clocks 1, 2, 3. */
  const events = drafts.map((draft, index) => stamperAt(index).stamp(draft));

  it('makes one message per event, routed by its type', () => {
    const messages = eventMessages(drafts, stamperAt(0));

    expect(messages.map((message) => message.routingKey)).toEqual([
      'task.received',
      'worker.heartbeat',
      'task.started',
    ]);
    expect(messages.map((message) => message.body)).toEqual(events.map((event) => event.json));
    expect(messages[0]?.headers).toEqual({ hostname: 'fn@env' });
  });

  it(`cuts a group into lists of ${EVENTS_PER_MESSAGE} events at most, in order`, () => {
    const many = Array.from({ length: EVENTS_PER_MESSAGE * 2 + 1 }, (_, index) =>
      taskStarted(`t${index}`),
    );

    const messages = eventMessages(many, stamperAt(0), { multi: true });

    const lists = messages.map((message) => JSON.parse(message.body) as { uuid: string }[]);
    expect(lists.map((list) => list.length)).toEqual([EVENTS_PER_MESSAGE, EVENTS_PER_MESSAGE, 1]);
    expect(lists.flat().map((event) => event.uuid)).toEqual(many.map((_, index) => `t${index}`));
  });

  it('with multi, makes one list message per group, routed <group>.multi, clocks in draft order', () => {
    const messages = eventMessages(drafts, stamperAt(0), { multi: true });

    expect(messages.map((message) => message.routingKey)).toEqual(['task.multi', 'worker.multi']);
    expect(messages.map((message) => JSON.parse(message.body))).toEqual([
      [JSON.parse(events[0]?.json ?? ''), JSON.parse(events[2]?.json ?? '')],
      [JSON.parse(events[1]?.json ?? '')],
    ]);
  });
});

/** What a receiver reads of a stamped draft. */
function stamped(stamper: EventStamper, draft: EventDraft): Record<string, unknown> {
  return JSON.parse(stamper.stamp(draft).json) as Record<string, unknown>;
}
