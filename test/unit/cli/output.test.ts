import { describe, expect, it } from 'vitest';
import type { DeadLetterEntry } from '../../../src/brokers/broker.js';
import type { BrokerIdentity } from '../../../src/cli/broker-choice.js';
import {
  deadLettersJson,
  describeBroker,
  describeOutcome,
  formatDeadLetter,
  formatDeadLetterTable,
  formatDuration,
  formatStatsTable,
  formatTable,
  formatWorkerEvent,
  progress,
  statsJson,
  truncate,
} from '../../../src/cli/output.js';
import { encodeRedisMessage } from '../../../src/core/redis-codec.js';
import type { DispatchOutcome } from '../../../src/worker/dispatch.js';
import { createCliApp } from '../../fixtures-app/cli-app.js';
import { deliveryOf, undecodableDelivery } from '../../helpers/lambda.js';

const app = createCliApp({ queue: 'jobs', prefix: 'app' });
const NOW = new Date('2025-03-01T12:00:01.234Z');
const REDIS: BrokerIdentity = {
  kind: 'redis',
  host: '127.0.0.1',
  port: 6379,
  db: 3,
  tls: false,
  source: 'BROKER_URL',
};
const RABBIT: BrokerIdentity = {
  kind: 'rabbitmq',
  host: 'h',
  port: 5672,
  vhost: '/',
  tls: false,
  source: '--broker',
};

function deadLetter(overrides: Partial<DeadLetterEntry> = {}): DeadLetterEntry {
  return {
    queue: 'jobs',
    reason: 'excluded',
    detail: 'failed with an excluded error',
    task: 'app.fail',
    id: 'id-1',
    retries: 0,
    errorType: 'TypeError',
    errorMessage: 'the payload has no body',
    at: '2025-03-01T12:00:00.000Z',
    raw: '{"body": "x"}',
    ...overrides,
  };
}

describe('formatTable', () => {
  it('pads every column to its widest cell and right-aligns the numeric ones', () => {
    // Act
    const table = formatTable(
      ['QUEUE', 'READY'],
      [
        ['events', '3'],
        ['a', '120'],
      ],
      [1],
    );

    // Assess
    expect(table).toBe('QUEUE   READY\nevents      3\na         120\n');
  });
});

describe('formatDuration', () => {
  it.each([
    [12.4, '12 ms'],
    [999, '999 ms'],
    [1500, '1.5 s'],
    [125_000, '2m05s'],
  ])('shows %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('truncate', () => {
  it('keeps short text, flattens new lines and cuts long text with an ellipsis', () => {
    expect(truncate('short')).toBe('short');
    expect(truncate('two\n  lines')).toBe('two lines');
    expect(truncate('abcdefghij', 5)).toBe('abcd…');
  });
});

describe('formatWorkerEvent', () => {
  const message = app.add.createMessage({ kwargs: { x: 1, y: 2 } });
  const retryDue = new Date(NOW.getTime() + 2000).toISOString();
  const cases: [string, DispatchOutcome, RegExp][] = [
    ['success', { kind: 'succeeded', durationMs: 3 }, /retries 0\/2 {2}succeeded in 3 ms$/],
    [
      'ignore',
      { kind: 'ignored', errorType: 'GoneError', durationMs: 4 },
      /ignored \(GoneError\) in 4 ms$/,
    ],
    [
      'retry',
      {
        kind: 'retry',
        dueAt: retryDue,
        errorType: 'StoreUnavailableError',
        errorMessage: 'busy',
        durationMs: 5,
      },
      /retry in 2\.0 s after 5 ms \(StoreUnavailableError: busy\)$/,
    ],
    [
      'not due',
      { kind: 'not-due', dueAt: retryDue },
      /not due: parked until 2025-03-01T12:00:03\.234Z$/,
    ],
    [
      'death',
      {
        kind: 'dead',
        reason: {
          reason: 'excluded',
          detail: 'x',
          task: message.task,
          id: message.id,
          retries: 0,
          errorType: 'TypeError',
          errorMessage: 'no body',
        },
        durationMs: 1,
      },
      /dead-lettered: excluded \(TypeError: no body\) after 1 ms$/,
    ],
    [
      'failed invoke',
      { kind: 'invoke-failed', detail: 'Throttled', failures: 2, dead: false },
      /could not be run \(attempt 2\), re-queued \(Throttled\)$/,
    ],
    [
      'poison',
      { kind: 'invoke-failed', detail: 'Throttled', failures: 5, dead: true },
      /dead-lettered: poison, could not be run 5 times \(Throttled\)$/,
    ],
    [
      'duplicate',
      { kind: 'duplicate', why: 'already-done', durationMs: 2 },
      /skipped as a duplicate \(already-done\) in 2 ms$/,
    ],
    [
      'release',
      { kind: 'released', detail: 'the deadline came first' },
      /put back unrun \(the deadline came first\)$/,
    ],
  ];

  it.each(cases)('shows a %s with the time, task[id] and retries', (_, outcome, expected) => {
    // Act
    const line = formatWorkerEvent(
      { queue: 'jobs', delivery: deliveryOf(message), outcome },
      app.registry,
      NOW,
    );

    // Assess
    expect(line.startsWith(`12:00:01.234  app.add[${message.id}]  retries 0/2  `)).toBe(true);
    expect(line.trimEnd()).toMatch(expected);
    expect(line.endsWith('\n')).toBe(true);
  });

  it('names an undecodable message by what could be read of it', () => {
    // Prepare
    const delivery = undecodableDelivery('jobs', 'bad-id');

    // Act
    const line = formatWorkerEvent(
      { queue: 'jobs', delivery, outcome: { kind: 'invalid', detail: 'pickle is not supported' } },
      app.registry,
      NOW,
    );

    // Assess
    expect(line).toBe(
      '12:00:01.234  sentry.tasks.do_work[bad-id]  dead-lettered: invalid message (pickle is not supported)\n',
    );
  });
});

describe('describeOutcome', () => {
  it('names the reason of a dead letter without an error by its detail', () => {
    // Act
    const text = describeOutcome(
      {
        kind: 'dead',
        reason: { reason: 'expired', detail: 'expired at 12:00', task: 't', id: 'i', retries: 0 },
        durationMs: 0,
      },
      NOW,
    );

    // Assess
    expect(text).toBe('dead-lettered: expired (expired at 12:00) after 0 ms');
  });

  it('never shows a negative delay for a retry already due', () => {
    // Act
    const text = describeOutcome(
      {
        kind: 'retry',
        dueAt: '2025-03-01T12:00:00.000Z',
        errorType: 'E',
        errorMessage: 'm',
        durationMs: 1,
      },
      NOW,
    );

    // Assess
    expect(text).toBe('retry in 0 ms after 1 ms (E: m)');
  });
});

describe('describeBroker', () => {
  it.each<[BrokerIdentity, string]>([
    [REDIS, 'Redis 127.0.0.1:6379 db 3'],
    [
      { kind: 'redis', host: 'cache', port: 6380, db: 0, tls: true, source: 'default' },
      'Redis (TLS) cache:6380 db 0 (default: no --broker, no BROKER_URL)',
    ],
    [RABBIT, 'RabbitMQ h:5672 vhost /'],
  ])('names %j as "%s"', (broker, text) => {
    expect(describeBroker(broker)).toBe(text);
  });
});

describe('formatStatsTable and statsJson', () => {
  const stats = [{ queue: 'jobs', ready: 2, unacked: 1, delayed: 3, deadLettered: 4 }];

  it('shows every count on Redis, under the broker read', () => {
    expect(formatStatsTable(stats, REDIS)).toBe(
      'broker: Redis 127.0.0.1:6379 db 3\n' +
        'QUEUE  READY  UNACKED  DELAYED  DEAD\njobs       2        1        3     4\n',
    );
  });

  it("marks RabbitMQ's unacked count unknown and says why", () => {
    // Act
    const table = formatStatsTable(stats, RABBIT);
    const json = JSON.parse(statsJson(stats, RABBIT));

    // Assess
    expect(table.split('\n')[0]).toBe('broker: RabbitMQ h:5672 vhost /');
    expect(table).toMatch(/^jobs\s+2\s+-\s+3\s+4$/m);
    expect(table).toContain("AMQP does not report other consumers' holds");
    expect(json).toEqual({
      broker: {
        kind: 'rabbitmq',
        host: 'h',
        port: 5672,
        vhost: '/',
        tls: false,
        source: '--broker',
      },
      queues: [{ queue: 'jobs', ready: 2, unacked: null, delayed: 3, deadLettered: 4 }],
    });
  });
});

describe('deadLettersJson', () => {
  it('names the broker beside the entries', () => {
    expect(JSON.parse(deadLettersJson([deadLetter()], REDIS))).toEqual({
      broker: {
        kind: 'redis',
        host: '127.0.0.1',
        port: 6379,
        db: 3,
        tls: false,
        source: 'BROKER_URL',
      },
      entries: [deadLetter()],
    });
  });
});

describe('formatDeadLetterTable', () => {
  it('shows time, queue, reason, task, id, retries and the error, cut to fit', () => {
    // Act
    const table = formatDeadLetterTable(
      [
        deadLetter({ errorMessage: 'x'.repeat(200) }),
        deadLetter({
          id: null,
          task: null,
          retries: null,
          errorType: undefined,
          detail: 'not JSON',
        }),
      ],
      REDIS,
    );

    // Assess
    const [broker, header, first, second] = table.split('\n');
    expect(broker).toBe('broker: Redis 127.0.0.1:6379 db 3');
    expect(header).toMatch(/^TIME\s+QUEUE\s+REASON\s+TASK\s+ID\s+RETRIES\s+ERROR$/);
    expect(first).toMatch(
      /^2025-03-01T12:00:00\.000Z\s+jobs\s+excluded\s+app\.fail\s+id-1\s+0\s+TypeError: x+…$/,
    );
    expect(first?.length).toBeLessThan(200);
    expect(second).toMatch(/\?\s+\?\s+\? {2}not JSON$/);
  });
});

describe('formatDeadLetter', () => {
  it('shows every field, the decoded body of a kombu envelope and the raw message', () => {
    // Prepare
    const message = app.add.createMessage({ kwargs: { x: 1, y: 2 } });
    const raw = encodeRedisMessage(message).envelope;

    // Act
    const text = formatDeadLetter(deadLetter({ raw, id: message.id }), RABBIT);

    // Assess
    expect(text.split('\n')[0]).toBe('broker:           RabbitMQ h:5672 vhost /');
    expect(text).toContain(`id:               ${message.id}`);
    expect(text).toContain('error:            TypeError: the payload has no body');
    expect(text).toContain('dead-lettered at: 2025-03-01T12:00:00.000Z');
    expect(text).toContain('body (decoded from the envelope):\n[\n  [],\n  {\n    "x": 1,');
    expect(text).toContain('raw message:\n{\n  "body":');
  });

  it('prints a raw message that is not JSON exactly as stored', () => {
    expect(formatDeadLetter(deadLetter({ raw: '\x80pickle' }), REDIS)).toMatch(
      /raw message:\n\x80pickle\n$/,
    );
  });
});

describe('progress', () => {
  it('redraws one line on a terminal and ends it', () => {
    // Prepare
    let written = '';
    const shown = progress(
      (text) => {
        written += text;
      },
      'replaying jobs',
      500,
      { tty: true, threshold: 200 },
    );

    // Act
    shown.update(200);
    shown.update(500);
    shown.finish();

    // Assess
    expect(written).toBe('\rreplaying jobs: 200/500\rreplaying jobs: 500/500\n');
  });

  it('writes a line per update off a terminal and nothing for small runs', () => {
    // Prepare
    let written = '';
    const write = (text: string) => {
      written += text;
    };

    // Act
    const large = progress(write, 'purging jobs', 300, { tty: false, threshold: 200 });
    large.update(200);
    large.finish();
    const small = progress(write, 'purging other', 10, { tty: false, threshold: 200 });
    small.update(10);
    small.finish();

    // Assess
    expect(written).toBe('purging jobs: 200/300\n');
  });
});
