import { describe, expect, it } from 'vitest';
import { RedisBroker } from '../../../../src/brokers/redis/redis-broker.js';
import { parseBrokerConfig, type RedisBrokerConfig } from '../../../../src/config/broker-config.js';
import { queueDeclarationSchema } from '../../../../src/core/queue.js';

/** Nothing listens on port 1: any attempt to connect would fail the test. */
const UNREACHABLE = 'redis://127.0.0.1:1/0';

function makeBroker(overrides: { queues?: string[][]; keyPrefix?: string } = {}): RedisBroker {
  const config = parseBrokerConfig({
    kind: 'redis',
    url: UNREACHABLE,
    keyPrefix: overrides.keyPrefix ?? '',
  }) as RedisBrokerConfig;
  const queues = (overrides.queues ?? []).map(([name, deadLetterQueue]) =>
    queueDeclarationSchema.parse({ name, deadLetterQueue }),
  );
  return new RedisBroker({ config, queues });
}

describe('RedisBroker without a server', () => {
  it.each([
    ['a declared queue', 'events', 'events.graveyard'],
    ['an undeclared queue', 'other', 'other.dlq'],
  ])('names the dead-letter queue of %s', (_, queue, expected) => {
    // Prepare
    const broker = makeBroker({ queues: [['events', 'events.graveyard']] });

    // Act
    const name = broker.deadLetterQueue(queue);

    // Assess
    expect(name).toBe(expected);
  });

  it('exposes its key names with the configured prefix', () => {
    // Act
    const { keys } = makeBroker({ keyPrefix: 'app:' });

    // Assess
    expect(keys.unacked).toBe('app:unacked');
  });

  it.each([
    ['publishing no message', (broker: RedisBroker) => broker.publish([])],
    ['settling no delivery', (broker: RedisBroker) => broker.settle([])],
    ['closing before any use', (broker: RedisBroker) => broker.close()],
  ])('does not connect for %s', async (_, act) => {
    // Prepare
    const broker = makeBroker();

    // Act
    const done = act(broker);

    // Assess
    await expect(done).resolves.toBeUndefined();
    await broker.close();
  });

  it('refuses every operation once closed', async () => {
    // Prepare
    const broker = makeBroker();
    await broker.close();

    // Act
    const attempts = await Promise.allSettled([
      broker.publish([{ routingKey: 'events' } as never]),
      broker.receive('events', { max: 1, waitMs: 0 }),
      broker.stats('events'),
      broker.restoreStale(),
    ]);

    // Assess
    expect(attempts.map((attempt) => attempt.status)).toEqual(Array(4).fill('rejected'));
    for (const attempt of attempts) {
      expect((attempt as PromiseRejectedResult).reason).toEqual(
        new Error('the Redis broker is closed'),
      );
    }
  });
});
