import { afterEach, describe, expect, it, vi } from 'vitest';
import { RabbitMqBroker } from '../../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { RedisBroker } from '../../../src/brokers/redis/redis-broker.js';
import { createRegistry } from '../../../src/core/registry.js';
import { createRuntime } from '../../../src/lambda/runtime.js';

const registry = createRegistry({ tasks: [], queues: [{ name: 'q' }] });

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('createRuntime', () => {
  it('creates the broker on first use and hands the same one to every later call', async () => {
    // Prepare
    let configured = 0;
    const runtime = createRuntime({
      registry,
      broker: () => {
        configured++;
        return 'redis://127.0.0.1:6379/0';
      },
    });

    // Act
    const first = runtime.broker();
    const second = runtime.broker();

    // Assess
    expect(second).toBe(first);
    expect(configured).toBe(1);
    await first.close();
  });

  it.each([
    ['BROKER_URL when set', 'amqp://guest:guest@127.0.0.1:5672/', undefined, RabbitMqBroker],
    ['the local Redis without BROKER_URL', undefined, undefined, RedisBroker],
    [
      'its own option over BROKER_URL',
      'amqp://127.0.0.1/',
      'redis://127.0.0.1:6379/3',
      RedisBroker,
    ],
  ])('uses %s', async (_, env, option, kind) => {
    // Prepare
    vi.stubEnv('BROKER_URL', env);
    const runtime = createRuntime({ registry, ...(option ? { broker: option } : {}) });

    // Act
    const broker = runtime.broker();

    // Assess
    expect(broker).toBeInstanceOf(kind);
    expect(runtime.registry).toBe(registry);
    await broker.close();
  });
});
