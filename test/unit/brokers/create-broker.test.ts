import { afterEach, describe, expect, it } from 'vitest';
import { createBroker } from '../../../src/brokers/create-broker.js';
import { RabbitMqBroker } from '../../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { RedisBroker } from '../../../src/brokers/redis/redis-broker.js';
import { InvalidConfigError } from '../../../src/core/errors.js';

// serverless.yml's esbuild `define` replaces this variable by the deployed broker; unbundled it
// is an ordinary environment variable, read the same way.
const VARIABLE = 'SERVERLESS_CELERY_BROKER';

describe('createBroker', () => {
  afterEach(() => {
    delete process.env[VARIABLE];
  });

  it('picks the adapter from the URL scheme when the build holds both', async () => {
    // Act
    const redis = createBroker('redis://127.0.0.1:6379/0');
    const rabbitmq = createBroker('amqp://guest:guest@127.0.0.1:5672/');

    // Assess
    expect(redis).toBeInstanceOf(RedisBroker);
    expect(rabbitmq).toBeInstanceOf(RabbitMqBroker);
    await Promise.all([redis.close(), rabbitmq.close()]);
  });

  it.each([
    ['redis', 'amqp://guest:guest@127.0.0.1:5672/', 'rabbitmq'],
    ['rabbitmq', 'redis://127.0.0.1:6379/0', 'redis'],
  ])(
    'refuses, in a %s-only build, a broker of the other kind and says how to build it',
    (only, url, kind) => {
      // Prepare
      process.env[VARIABLE] = only;

      // Act
      const create = () => createBroker(url);

      // Assess
      expect(create).toThrow(InvalidConfigError);
      expect(create).toThrow(`kind: ${kind} is not in this build`);
      expect(create).toThrow(`--param=broker=${kind}`);
    },
  );
});
