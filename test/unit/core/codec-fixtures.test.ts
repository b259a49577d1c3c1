/**
 * Every capture of real Celery 5.2.6 in `../shared/fixtures/celery/` decoded by our codec. The
 * table names every fixture file, and the first test fails when a file is added or removed
 * without updating it, so no capture is ever skipped silently.
 */
import { describe, expect, it } from 'vitest';
import { decodeAmqpMessage } from '../../../src/core/amqp-codec.js';
import type { TaskMessage, TimeLimit } from '../../../src/core/message.js';
import {
  decodeRedisMessage,
  decodeUnackedEntry,
  redisBindingMember,
  redisPriorityKey,
} from '../../../src/core/redis-codec.js';
import type { DecodeResult } from '../../../src/core/wire.js';
import { expectDecoded } from '../../helpers/decode.js';
import {
  type AmqpTopologyFixture,
  amqpDeliveryFromFixture,
  isMessageFixture,
  listCeleryFixtures,
  loadCeleryFixture,
  type MessageFixture,
  type RedisMessageFixture,
  type RedisResultBackendFixture,
  type RedisTopologyFixture,
  type RedisUnackedFixture,
} from '../../helpers/fixtures.js';

/** What the Celery call behind a capture asked for (README.md "Cases"); unset means Celery's default. */
interface CallFacts {
  readonly args: unknown[];
  readonly kwargs?: Record<string, unknown>;
  readonly task?: string;
  readonly priority?: number;
  readonly timeLimit?: TimeLimit;
  readonly shadow?: string;
  readonly ignoreResult?: boolean;
  /** Sent by `Task.retry`: retries 1, parent = root = own id. */
  readonly retried?: true;
  readonly redelivered?: true;
  /** Absolute `eta` the call gave. */
  readonly eta?: string;
  /** `expires` minus `eta`, in seconds, when the call gave both relative to one "now". */
  readonly expiresAfterEtaSeconds?: number;
}

const PLAIN: CallFacts = {
  args: [1, 'two', { three: 3 }],
  kwargs: { user_id: 42, tags: ['a', 'b'] },
};
const COUNTDOWN_EXPIRES: CallFacts = { args: ['later'], expiresAfterEtaSeconds: 3600 - 60 };
const ETA: CallFacts = { args: ['at'], eta: '2030-01-02T03:04:05Z' };
const PRIORITY: CallFacts = { args: ['urgent'], priority: 7 };
const OPTIONS: CallFacts = {
  args: ['opts'],
  timeLimit: [30, 20],
  shadow: 'sentry.tasks.alias',
  ignoreResult: true,
};
const BEAT: CallFacts = { args: ['beat'], kwargs: { scheduled: true } };
const RETRY_KWARGS = { interop_raise: 'retry', interop_raise_times: 1 };
const RETRY: CallFacts = { args: ['retry-me'], kwargs: RETRY_KWARGS, retried: true };
const AUTORETRY: CallFacts = {
  args: ['auto'],
  kwargs: RETRY_KWARGS,
  task: 'sentry.tasks.do_work_autoretry',
  retried: true,
};

/** Every message fixture, by file name. */
const MESSAGE_FIXTURES: Record<string, CallFacts> = {
  'amqp-autoretry': AUTORETRY,
  'amqp-beat': BEAT,
  'amqp-countdown-expires': COUNTDOWN_EXPIRES,
  'amqp-eta': ETA,
  'amqp-ignore-result-timelimit-shadow': OPTIONS,
  'amqp-plain': PLAIN,
  'amqp-priority': PRIORITY,
  // Taken off the queue after the worker that held it was stopped: the broker flags it.
  'amqp-retry': { ...RETRY, redelivered: true },
  'redis-autoretry': AUTORETRY,
  'redis-beat': BEAT,
  'redis-countdown-expires': COUNTDOWN_EXPIRES,
  'redis-embed-chain': { args: ['step1'] },
  'redis-embed-link': { args: ['with-callbacks'] },
  'redis-eta': ETA,
  'redis-ignore-result-timelimit-shadow': OPTIONS,
  'redis-json-types': {
    args: [
      '2024-05-06T07:08:09.123456Z',
      '2024-05-06T07:08:09',
      '2024-05-06T00:00:00',
      '12.50',
      '12345678-1234-5678-1234-567812345678',
    ],
  },
  'redis-plain': PLAIN,
  'redis-priority': PRIORITY,
  'redis-restored-after-shutdown': { ...RETRY, redelivered: true },
  'redis-retry': RETRY,
};

/** Fixtures that hold broker state rather than one message; each has its own test below. */
const STATE_FIXTURES = [
  'amqp-topology',
  'redis-result-backend',
  'redis-topology',
  'redis-unacked-entry',
];

function decodeFixture(fixture: MessageFixture): DecodeResult {
  return fixture.broker === 'redis'
    ? decodeRedisMessage(fixture.message.raw)
    : decodeAmqpMessage(amqpDeliveryFromFixture(fixture));
}

/** The fields a capture's own headers, properties and body say the message has. */
function fieldsFromCapture(fixture: MessageFixture): Partial<TaskMessage> {
  const { headers, body_decoded: body } = fixture.message;
  const [args, kwargs, embed] = body;
  const time = (value: unknown) => (typeof value === 'string' ? new Date(value) : null);
  const redelivered =
    fixture.broker === 'amqp'
      ? fixture.message.delivery_info.redelivered
      : headers.redelivered === true;
  return {
    id: headers.id as string,
    task: headers.task as string,
    args: args as TaskMessage['args'],
    kwargs: kwargs as TaskMessage['kwargs'],
    embed: embed as TaskMessage['embed'],
    eta: time(headers.eta),
    expires: time(headers.expires),
    retries: headers.retries as number,
    timeLimit: headers.timelimit as TimeLimit,
    shadow: headers.shadow as string | null,
    ignoreResult: headers.ignore_result as boolean,
    rootId: headers.root_id as string,
    parentId: headers.parent_id as string | null,
    priority: fixture.message.properties.priority as number,
    redelivered,
    protocol: 2,
  };
}

function loadMessageFixture(name: string): MessageFixture {
  const fixture = loadCeleryFixture(name);
  if (!isMessageFixture(fixture)) throw new Error(`${name} holds no message`);
  return fixture;
}

describe('Celery fixture coverage', () => {
  it('has a table entry for every fixture file in the folder, and no entry without a file', () => {
    // Prepare
    const covered = [...Object.keys(MESSAGE_FIXTURES), ...STATE_FIXTURES].sort();

    // Act
    const onDisk = listCeleryFixtures();

    // Assess
    expect(onDisk).toEqual(covered);
  });
});

describe('decoding captured Celery messages', () => {
  const cases = Object.entries(MESSAGE_FIXTURES);

  it.each(cases)('decodes %s into the fields its own headers and body hold', (name) => {
    // Prepare
    const fixture = loadMessageFixture(name);

    // Act
    const message = expectDecoded(decodeFixture(fixture));

    // Assess
    expect(message).toMatchObject(fieldsFromCapture(fixture));
    expect(message.extraHeaders).toEqual({});
  });

  it.each(cases)('decodes %s into what its Celery call asked for', (name, facts) => {
    // Prepare
    const fixture = loadMessageFixture(name);

    // Act
    const message = expectDecoded(decodeFixture(fixture));

    // Assess
    expect(message).toMatchObject({
      task: facts.task ?? 'sentry.tasks.do_work',
      args: facts.args,
      kwargs: facts.kwargs ?? {},
      priority: facts.priority ?? 0,
      timeLimit: facts.timeLimit ?? [null, null],
      shadow: facts.shadow ?? null,
      ignoreResult: facts.ignoreResult ?? false,
      retries: facts.retried ? 1 : 0,
      rootId: message.id,
      parentId: facts.retried ? message.id : null,
      redelivered: facts.redelivered ?? false,
      routingKey: 'important_queue',
      exchange: '',
    });
    if (facts.eta) expect(message.eta).toEqual(new Date(facts.eta));
    if (facts.expiresAfterEtaSeconds !== undefined) {
      const seconds = ((message.expires?.getTime() ?? 0) - (message.eta?.getTime() ?? 0)) / 1000;
      expect(seconds).toBe(facts.expiresAfterEtaSeconds);
    }
  });

  const retriesOfKnownTasks = cases.filter(
    ([name]) => 'original_task_id' in loadCeleryFixture(name),
  );

  it.each(retriesOfKnownTasks)('keeps the id of the original task in retry %s', (name) => {
    // Prepare
    const fixture = loadCeleryFixture<MessageFixture & { original_task_id: string }>(name);

    // Act
    const message = expectDecoded(decodeFixture(fixture));

    // Assess
    expect(message.id).toBe(fixture.original_task_id);
  });

  it.each(cases.filter(([name]) => name.startsWith('redis-')))(
    'reads the delivery tag of %s and would push it back to the list it was in',
    (name) => {
      // Prepare
      const fixture = loadCeleryFixture<RedisMessageFixture>(name);

      // Act
      const result = decodeRedisMessage(fixture.message.raw);
      const message = expectDecoded(result);

      // Assess
      expect(result.deliveryTag).toBe(fixture.message.properties.delivery_tag);
      // Retries were captured from `unacked`, which records no list.
      const key = fixture.message.redis_key ?? 'important_queue';
      expect(redisPriorityKey(message.routingKey, message.priority)).toBe(key);
    },
  );

  it('maps priority 7 to the step-6 list the Celery producer pushed it to', () => {
    // Prepare
    const fixture = loadCeleryFixture<RedisMessageFixture>('redis-priority');

    // Act
    const key = redisPriorityKey('important_queue', 7);

    // Assess
    expect(fixture.message.redis_key).toBe(key);
    expect(key).toBe('important_queue\x06\x166');
  });

  it('carries link and link_error signatures through embed untouched', () => {
    // Prepare
    const fixture = loadMessageFixture('redis-embed-link');

    // Act
    const { embed } = expectDecoded(decodeFixture(fixture));

    // Assess
    expect(embed.callbacks).toMatchObject([{ task: 'sentry.tasks.do_work', args: ['on-success'] }]);
    expect(embed.errbacks).toMatchObject([{ task: 'sentry.tasks.do_work', args: ['on-error'] }]);
    expect(embed.chain).toBeNull();
  });

  it('carries the remaining chain steps, last step first, through embed', () => {
    // Prepare
    const fixture = loadMessageFixture('redis-embed-chain');

    // Act
    const { embed } = expectDecoded(decodeFixture(fixture));

    // Assess
    expect(embed.chain).toHaveLength(2);
    expect(embed.chain).toMatchObject([{ args: ['step3'] }, { args: ['step2'] }]);
    expect(embed.callbacks).toBeNull();
  });

  it('reads kombu 5.2 dates, decimals and UUIDs as the plain strings it wrote', () => {
    // Prepare
    const fixture = loadMessageFixture('redis-json-types');

    // Act
    const { args } = expectDecoded(decodeFixture(fixture));

    // Assess
    expect(args).toHaveLength(5);
    for (const arg of args) expect(typeof arg).toBe('string');
  });
});

describe('captured Redis broker state', () => {
  it('decodes every envelope a worker held in the unacked hash', () => {
    // Prepare
    const fixture = loadCeleryFixture<RedisUnackedFixture>('redis-unacked-entry');
    const entries = Object.entries(fixture.unacked);

    // Act
    const decoded = entries.map(([tag, entry]) => {
      const unacked = decodeUnackedEntry(entry.raw);
      if (!unacked) expect.fail(`unacked entry ${tag} was not [envelope, exchange, routing_key]`);
      const result = decodeRedisMessage(unacked.envelope);
      return { tag, entry, unacked, result, message: expectDecoded(result) };
    });

    // Assess
    expect(decoded).toHaveLength(2);
    for (const { tag, entry, unacked, result, message } of decoded) {
      expect(unacked).toMatchObject({ exchange: entry.exchange, routingKey: entry.routing_key });
      expect(result.deliveryTag).toBe(tag);
      expect(message.id).toBe(entry.message.headers.id);
      expect(message.retries).toBe(1);
    }
  });

  it('indexes every unacked entry by a numeric delivery time before its eta', () => {
    // Prepare
    const fixture = loadCeleryFixture<RedisUnackedFixture>('redis-unacked-entry');

    // Act
    const scores = new Map(fixture.unacked_index.map(([tag, score]) => [tag, Number(score)]));

    // Assess
    expect([...scores.keys()].sort()).toEqual(Object.keys(fixture.unacked).sort());
    for (const [tag, entry] of Object.entries(fixture.unacked)) {
      const message = expectDecoded(decodeRedisMessage(entry.message.raw));
      const deliveredAt = scores.get(tag) ?? Number.NaN;
      expect(Number.isFinite(deliveredAt)).toBe(true);
      // The worker fetched the message at once and held it until its eta.
      expect(deliveredAt * 1000).toBeLessThan(message.eta?.getTime() ?? 0);
    }
  });

  it('writes the same binding member for a queue as the Celery worker did', () => {
    // Prepare
    const fixture = loadCeleryFixture<RedisTopologyFixture>('redis-topology');

    // Act
    const member = redisBindingMember('important_queue');

    // Assess
    expect(fixture.keys['_kombu.binding.important_queue']).toEqual({
      type: 'set',
      members: [member],
    });
  });

  it.each([
    ['success', 'SUCCESS'],
    ['failure', 'FAILURE'],
  ])('stores the %s result as JSON with its status and task id', (name, status) => {
    // Prepare
    const { results } = loadCeleryFixture<RedisResultBackendFixture>('redis-result-backend');
    const result = results[name];

    // Act
    const value = JSON.parse(result?.raw ?? 'null');

    // Assess
    expect(value).toMatchObject({ status, task_id: result?.key.replace('celery-task-meta-', '') });
  });

  it('stores nothing for a task sent with ignore_result', () => {
    // Prepare
    const { results } = loadCeleryFixture<RedisResultBackendFixture>('redis-result-backend');

    // Act
    const ignored = results.ignore_result;

    // Assess
    expect(ignored).toMatchObject({ raw: null, ttl_seconds: -2 });
  });
});

describe('captured RabbitMQ topology', () => {
  const topology = () => loadCeleryFixture<AmqpTopologyFixture>('amqp-topology');

  it('declares the work queue durable, not auto-delete, with no arguments', () => {
    // Prepare
    const { queues } = topology();

    // Act
    const queue = queues.find((candidate) => candidate.name === 'important_queue');

    // Assess
    expect(queue).toEqual({
      name: 'important_queue',
      durable: true,
      auto_delete: false,
      exclusive: false,
      arguments: [],
    });
  });

  it('declares a durable direct exchange named like the queue, bound by the queue name', () => {
    // Prepare
    const { exchanges, bindings } = topology();

    // Act
    const exchange = exchanges.find((candidate) => candidate.name === 'important_queue');
    const binding = bindings.find((candidate) => candidate.source_name === 'important_queue');

    // Assess
    expect(exchange).toMatchObject({ type: 'direct', durable: true, auto_delete: false });
    expect(binding).toMatchObject({
      destination_name: 'important_queue',
      destination_kind: 'queue',
      routing_key: 'important_queue',
    });
  });
});
