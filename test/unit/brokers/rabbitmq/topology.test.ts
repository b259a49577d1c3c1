/**
 * The RabbitMQ topology as data: kombu's delay routing keys and levels, the work queue
 * declaration, and the 406 explanation. Declarations are recorded by a fake channel; a small
 * topic router then walks a delayed message through what was declared, so the bindings are
 * checked by what they do, not by how they are written.
 */
import { describe, expect, it } from 'vitest';
import {
  DELAY_BITS,
  DelayTopology,
  declareDelayTopology,
  declareWorkQueue,
  delayRoutingKey,
  delaySeconds,
  deliveryBindingKey,
  explainDeclareError,
  MAX_DELAY_SECONDS,
  type TopologyChannel,
} from '../../../../src/brokers/rabbitmq/topology.js';
import { queueDeclarationSchema } from '../../../../src/core/queue.js';

interface Declared {
  readonly exchanges: Map<string, { type: string; options: unknown }>;
  readonly queues: Map<
    string,
    { durable?: boolean; autoDelete?: boolean; arguments?: Record<string, unknown> }
  >;
  /** `[source, destination, pattern, kind]` in declaration order. */
  readonly bindings: [
    source: string,
    destination: string,
    pattern: string,
    kind: 'queue' | 'exchange',
  ][];
}

/** A channel that records what is declared, as RabbitMQ would hold it. */
function recordingChannel(): TopologyChannel & Declared {
  const declared: Declared = { exchanges: new Map(), queues: new Map(), bindings: [] };
  return {
    ...declared,
    async assertExchange(exchange, type, options) {
      declared.exchanges.set(exchange, { type, options });
    },
    async assertQueue(queue, options) {
      declared.queues.set(queue, options ?? {});
    },
    async bindQueue(queue, source, pattern) {
      declared.bindings.push([source, queue, pattern, 'queue']);
    },
    async bindExchange(destination, source, pattern) {
      declared.bindings.push([source, destination, pattern, 'exchange']);
    },
  };
}

/** AMQP topic matching: `*` is one word, `#` zero or more. */
function topicMatches(pattern: string, key: string): boolean {
  const match = (p: string[], k: string[]): boolean => {
    if (p.length === 0) return k.length === 0;
    const [head, ...rest] = p;
    if (head === '#') return match(rest, k) || (k.length > 0 && match(p, k.slice(1)));
    return k.length > 0 && (head === '*' || head === k[0]) && match(rest, k.slice(1));
  };
  return match(pattern.split('.'), key.split('.'));
}

/**
 * Follows a message published to `exchange` with `key` through the declared topology: topic
 * bindings route it, a delay queue holds it for its TTL and dead-letters it, keeping the key.
 * Returns the queues it ends in and the seconds it waited on the way.
 */
function route(declared: Declared, exchange: string, key: string, waited = 0): [string, number][] {
  return declared.bindings
    .filter(([source, , pattern]) => source === exchange && topicMatches(pattern, key))
    .flatMap(([, destination, , kind]) => {
      if (kind === 'exchange') return route(declared, destination, key, waited);
      const args = declared.queues.get(destination)?.arguments ?? {};
      const ttl = args['x-message-ttl'];
      const next = args['x-dead-letter-exchange'];
      if (typeof ttl !== 'number' || typeof next !== 'string') return [[destination, waited]];
      return route(declared, next, key, waited + ttl / 1000);
    });
}

const ZEROS = (count: number) => '0.'.repeat(count);

describe('delayRoutingKey', () => {
  it.each([
    [1, `${ZEROS(27)}1.celery`],
    [5, `${ZEROS(25)}1.0.1.celery`],
    [90, `${ZEROS(21)}1.0.1.1.0.1.0.celery`],
    [MAX_DELAY_SECONDS, `${'1.'.repeat(28)}celery`],
  ])('writes %i s as 28 binary digits before the routing key', (seconds, key) => {
    expect(delayRoutingKey(seconds, 'celery')).toBe(key);
    expect(key.split('.').slice(0, DELAY_BITS)).toHaveLength(28);
  });

  it('keeps dots in the routing key after the digits', () => {
    expect(delayRoutingKey(2, 'sentry.alerts')).toBe(`${ZEROS(26)}1.0.sentry.alerts`);
  });

  it.each([0, -1, 1.5, MAX_DELAY_SECONDS + 1, Number.NaN])('refuses a delay of %d s', (seconds) => {
    expect(() => delayRoutingKey(seconds, 'celery')).toThrow(RangeError);
  });
});

describe('delaySeconds', () => {
  const NOW = Date.UTC(2030, 0, 2, 3, 4, 5);

  it.each([
    [1, 1],
    [999, 1],
    [1_000, 1],
    [1_001, 2],
    [2_000, 2],
    [89_999, 90],
    [90_000, 90],
  ])('rounds %i ms up to %i whole seconds, so a message is never early', (ms, seconds) => {
    expect(delaySeconds(new Date(NOW + ms), NOW)).toBe(seconds);
  });

  it.each([0, -1, -1_500])('has no delay for a message due %i ms from now', (ms) => {
    expect(delaySeconds(new Date(NOW + ms), NOW)).toBeLessThanOrEqual(0);
  });

  it('caps a delay beyond 2^28 − 1 s at the longest one', () => {
    expect(delaySeconds(new Date(NOW + 10 * MAX_DELAY_SECONDS * 1000), NOW)).toBe(
      MAX_DELAY_SECONDS,
    );
  });
});

describe('DelayTopology', () => {
  it.each([
    ['', 'celery_delayed_0', 'celery_delayed_27', 'celery_delayed_delivery'],
    [
      'sentry',
      'sentry_celery_delayed_0',
      'sentry_celery_delayed_27',
      'sentry_celery_delayed_delivery',
    ],
  ])("names the levels like Celery with prefix '%s'", (prefix, level0, entry, delivery) => {
    const names = new DelayTopology(prefix);

    expect([names.level(0), names.entry, names.delivery]).toEqual([level0, entry, delivery]);
  });
});

describe('declareDelayTopology', () => {
  it.each(['quorum', 'classic'] as const)(
    "declares kombu's 28 %s levels with their TTL and dead-letter chain",
    async (queueType) => {
      const channel = recordingChannel();

      await declareDelayTopology(channel, new DelayTopology(), queueType);

      expect(channel.queues.size).toBe(28);
      expect(channel.exchanges.size).toBe(29);
      expect(channel.queues.get('celery_delayed_27')).toEqual({
        durable: true,
        arguments: {
          'x-queue-type': queueType,
          'x-overflow': 'reject-publish',
          'x-message-ttl': 134_217_728_000,
          'x-dead-letter-exchange': 'celery_delayed_26',
          ...(queueType === 'quorum' ? { 'x-dead-letter-strategy': 'at-least-once' } : {}),
        },
      });
      expect(channel.queues.get('celery_delayed_0')?.arguments).toMatchObject({
        'x-message-ttl': 1000,
        'x-dead-letter-exchange': 'celery_delayed_delivery',
      });
      for (const exchange of channel.exchanges.values()) {
        expect(exchange).toEqual({ type: 'topic', options: { durable: true } });
      }
    },
  );

  it('binds level 27 for a 1 in the first digit and level 0 for a 1 in the last', async () => {
    const channel = recordingChannel();

    await declareDelayTopology(channel, new DelayTopology(), 'quorum');

    expect(channel.bindings).toContainEqual([
      'celery_delayed_27',
      'celery_delayed_27',
      '1.#',
      'queue',
    ]);
    expect(channel.bindings).toContainEqual([
      'celery_delayed_0',
      'celery_delayed_0',
      `${'*.'.repeat(27)}1.#`,
      'queue',
    ]);
    expect(channel.bindings).toContainEqual([
      'celery_delayed_27',
      'celery_delayed_26',
      '0.#',
      'exchange',
    ]);
    expect(channel.bindings).toContainEqual([
      'celery_delayed_0',
      'celery_delayed_delivery',
      `${'*.'.repeat(27)}0.#`,
      'exchange',
    ]);
  });

  it.each([1, 2, 5, 90, 3_600, 86_400 * 365, MAX_DELAY_SECONDS])(
    'routes a %i s delay through exactly the levels of its set bits, then to the work queue',
    async (seconds) => {
      const channel = recordingChannel();
      const names = new DelayTopology('sentry');
      await declareDelayTopology(channel, names, 'quorum');
      await declareWorkQueue(channel, queueDeclarationSchema.parse({ name: 'alerts' }), names);

      const reached = route(channel, names.entry, delayRoutingKey(seconds, 'alerts'));

      expect(reached).toEqual([['alerts', seconds]]);
    },
  );

  it('delivers a delayed message only to its own queue, not to one whose name ends like it', async () => {
    const channel = recordingChannel();
    const names = new DelayTopology();
    await declareDelayTopology(channel, names, 'classic');
    for (const name of ['save_event', 'events.save_event']) {
      await declareWorkQueue(channel, queueDeclarationSchema.parse({ name }), names);
    }

    const reached = route(channel, names.entry, delayRoutingKey(3, 'events.save_event'));

    expect(reached).toEqual([['events.save_event', 3]]);
  });
});

describe('declareWorkQueue', () => {
  it('declares a default queue as Celery does: durable, no arguments, its direct exchange', async () => {
    const channel = recordingChannel();

    await declareWorkQueue(
      channel,
      queueDeclarationSchema.parse({ name: 'important_queue' }),
      new DelayTopology(),
    );

    expect(channel.queues.get('important_queue')).toEqual({
      durable: true,
      autoDelete: false,
      arguments: {},
    });
    expect(channel.exchanges.get('important_queue')).toEqual({
      type: 'direct',
      options: { durable: true },
    });
    expect(channel.bindings).toEqual([
      ['important_queue', 'important_queue', 'important_queue', 'queue'],
      [
        'celery_delayed_delivery',
        'important_queue',
        deliveryBindingKey('important_queue'),
        'queue',
      ],
    ]);
    expect(channel.queues.get('important_queue.dlq')).toEqual({ durable: true });
  });

  it('keeps the exchange durable for a non-durable queue, as kombu does', async () => {
    const channel = recordingChannel();

    await declareWorkQueue(
      channel,
      queueDeclarationSchema.parse({ name: 'alerts', durable: false, maxPriority: 9 }),
      new DelayTopology(),
    );

    expect(channel.queues.get('alerts')).toEqual({
      durable: false,
      autoDelete: false,
      arguments: { 'x-max-priority': 9 },
    });
    expect(channel.exchanges.get('alerts')?.options).toEqual({ durable: true });
  });
});

describe('explainDeclareError', () => {
  const refusal = new Error(
    "Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message \"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'alerts' in vhost '/': received none but current is the value '10' of type 'signedint'\"",
  );

  it('names the object, keeps RabbitMQ’s reason and says which side must change', () => {
    const explained = explainDeclareError(refusal, 'queue alerts');

    expect(explained).toMatch(/^queue alerts already exists on the broker with other settings/);
    expect(explained).toContain("(inequivalent arg 'x-max-priority' for queue 'alerts'");
    expect(explained).toContain(
      'declare the queue in the registry exactly as the Python side does',
    );
  });

  it.each([
    new Error('connect ECONNREFUSED 127.0.0.1:5672'),
    new Error(
      'Operation failed: QueueDeclare; 404 (NOT-FOUND) with message "NOT_FOUND - no queue \'x\'"',
    ),
    'a string thrown',
  ])('leaves anything but a 406 alone: %s', (error) => {
    expect(explainDeclareError(error, 'queue x')).toBeNull();
  });
});
