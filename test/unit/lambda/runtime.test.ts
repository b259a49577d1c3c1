import { afterEach, describe, expect, it, vi } from 'vitest';
import { RabbitMqBroker } from '../../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { RedisBroker } from '../../../src/brokers/redis/redis-broker.js';
import { InvalidConfigError } from '../../../src/core/errors.js';
import { createRegistry } from '../../../src/core/registry.js';
import { brokerConfigFromEnv, createRuntime } from '../../../src/lambda/runtime.js';

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

describe('brokerConfigFromEnv', () => {
  it.each([
    ['BROKER_URL alone', { BROKER_URL: 'redis://cache:6379/0' }, 'redis://cache:6379/0'],
    ['nothing', {}, 'redis://127.0.0.1:6379/0'],
    [
      'BROKER_VISIBILITY_TIMEOUT with a Redis BROKER_URL',
      { BROKER_URL: 'redis://cache:6379/0', BROKER_VISIBILITY_TIMEOUT: '960' },
      { kind: 'redis', url: 'redis://cache:6379/0', visibilityTimeout: 960 },
    ],
    [
      'BROKER_VISIBILITY_TIMEOUT without BROKER_URL',
      { BROKER_VISIBILITY_TIMEOUT: '960' },
      { kind: 'redis', url: 'redis://127.0.0.1:6379/0', visibilityTimeout: 960 },
    ],
    [
      'the URL over BROKER_VISIBILITY_TIMEOUT',
      {
        BROKER_URL: 'redis://cache:6379/0?visibility_timeout=7200',
        BROKER_VISIBILITY_TIMEOUT: '960',
      },
      'redis://cache:6379/0?visibility_timeout=7200',
    ],
    [
      'BROKER_SECRET_ARN beside a RabbitMQ BROKER_URL',
      { BROKER_URL: 'amqps://mq:5671/', BROKER_SECRET_ARN: 'arn:aws:secretsmanager:x' },
      { kind: 'rabbitmq', url: 'amqps://mq:5671/', secretArn: 'arn:aws:secretsmanager:x' },
    ],
    [
      'BROKER_SECRET_ARN with BROKER_VISIBILITY_TIMEOUT',
      {
        BROKER_URL: 'redis://cache:6379/0',
        BROKER_VISIBILITY_TIMEOUT: '960',
        BROKER_SECRET_ARN: 'arn:aws:secretsmanager:x',
      },
      {
        kind: 'redis',
        url: 'redis://cache:6379/0',
        visibilityTimeout: 960,
        secretArn: 'arn:aws:secretsmanager:x',
      },
    ],
    [
      'an empty BROKER_SECRET_ARN as unset',
      { BROKER_URL: 'redis://cache:6379/0', BROKER_SECRET_ARN: '' },
      'redis://cache:6379/0',
    ],
    [
      'a RabbitMQ BROKER_URL, ignoring BROKER_VISIBILITY_TIMEOUT',
      { BROKER_URL: 'amqp://guest:guest@mq:5672/', BROKER_VISIBILITY_TIMEOUT: '960' },
      'amqp://guest:guest@mq:5672/',
    ],
  ])('reads %s', (_, env, expected) => {
    // Act
    const config = brokerConfigFromEnv(env);

    // Assess
    expect(config).toEqual(expected);
  });

  it.each([['abc'], ['0'], ['-1'], ['15m']])(
    'refuses BROKER_VISIBILITY_TIMEOUT=%s, naming the variable',
    (value) => {
      // Act
      const attempt = () =>
        brokerConfigFromEnv({ BROKER_URL: 'redis://cache/0', BROKER_VISIBILITY_TIMEOUT: value });

      // Assess
      expect(attempt).toThrow(InvalidConfigError);
      expect(attempt).toThrow(/^environment: BROKER_VISIBILITY_TIMEOUT: must be a positive number/);
    },
  );

  it('is what a runtime given no broker options builds its broker from', () => {
    // Prepare
    vi.stubEnv('BROKER_URL', 'redis://127.0.0.1:6379/0');
    vi.stubEnv('BROKER_VISIBILITY_TIMEOUT', 'soon');
    const runtime = createRuntime({ registry });

    // Act
    const attempt = () => runtime.broker();

    // Assess
    expect(attempt).toThrow('BROKER_VISIBILITY_TIMEOUT');
  });
});
