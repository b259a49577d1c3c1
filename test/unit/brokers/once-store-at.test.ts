import { afterEach, describe, expect, it, vi } from 'vitest';
import { onceStoreAt } from '../../../src/brokers/once-store-at.js';
import { InvalidConfigError } from '../../../src/core/errors.js';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('onceStoreAt', () => {
  it.each([
    ['redis://127.0.0.1:6379/0'],
    ['rediss://cache:6380/0?visibility_timeout=960'],
    ['amqp://guest:guest@127.0.0.1:5672/'],
  ])('builds a store for %s without connecting', async (url) => {
    // Act
    const store = onceStoreAt(url);

    // Assess
    expect(Object.keys(store).sort()).toEqual(['claim', 'close', 'exists', 'release']);
    await store.close();
  });

  it('refuses a URL of no broker, naming the reason', () => {
    // Act
    const attempt = () => onceStoreAt('http://127.0.0.1:6379/0');

    // Assess
    expect(attempt).toThrow(InvalidConfigError);
    expect(attempt).toThrow(
      'once store: url: not a redis://, rediss://, redis+cluster://, rediss+cluster://, amqp:// or amqps:// URL',
    );
  });

  it.each([
    ['rabbitmq', 'redis://127.0.0.1:6379/0', 'redis'],
    ['redis', 'amqp://guest:guest@127.0.0.1:5672/', 'amqp'],
  ])('in a %s build, refuses a store on %s and says how to pass one', (build, url, scheme) => {
    // Prepare
    vi.stubEnv('SERVERLESS_CELERY_BROKER', build);

    // Act
    const attempt = () => onceStoreAt(url);

    // Assess
    expect(attempt).toThrow(
      `once store: url: a once store on ${scheme} is not in this build (SERVERLESS_CELERY_BROKER=${build}): pass one built with redisOnceStore or rabbitMqOnceStore`,
    );
  });

  it('words its error as the caller asks', () => {
    // Prepare
    vi.stubEnv('SERVERLESS_CELERY_BROKER', 'redis');

    // Act
    const attempt = () =>
      onceStoreAt('amqps://mq:5671/', {
        subject: 'poller relay',
        noun: 'a relay store',
        advice: 'pass one as `relay.store`',
      });

    // Assess
    expect(attempt).toThrow(
      'poller relay: url: a relay store on amqps is not in this build (SERVERLESS_CELERY_BROKER=redis): pass one as `relay.store`',
    );
  });
});
