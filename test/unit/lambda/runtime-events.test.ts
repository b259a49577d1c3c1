/**
 * Celery events in a deployed function: off unless `CELERY_EVENTS` (or the runtime's `events`)
 * turns them on, and then one dispatcher per cold start, on the broker's kind.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RabbitMqEventDispatcher } from '../../../src/brokers/rabbitmq/rabbitmq-events.js';
import { RedisEventDispatcher } from '../../../src/brokers/redis/redis-events.js';
import { celeryEventsFromEnv } from '../../../src/config/events-config.js';
import { InvalidConfigError } from '../../../src/core/errors.js';
import { createRegistry } from '../../../src/core/registry.js';
import { createRuntime } from '../../../src/lambda/runtime.js';

const registry = createRegistry({ tasks: [], queues: [{ name: 'q' }] });

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('runtime.events', () => {
  it('creates no dispatcher when events are off, and never reads the broker config for them', () => {
    // Prepare
    vi.stubEnv('CELERY_EVENTS', '');
    let configured = 0;
    const runtime = createRuntime({
      registry,
      broker: () => {
        configured++;
        return 'redis://127.0.0.1:6379/0';
      },
    });

    // Act
    const events = runtime.events?.();

    // Assess
    expect(events).toBeNull();
    expect(configured).toBe(0);
  });

  it.each([
    [
      'CELERY_EVENTS=true on Redis',
      'true',
      undefined,
      'redis://127.0.0.1:6379/0',
      RedisEventDispatcher,
    ],
    [
      'CELERY_EVENTS=1 on RabbitMQ',
      '1',
      undefined,
      'amqp://127.0.0.1:5672/',
      RabbitMqEventDispatcher,
    ],
    [
      'its own option over the environment',
      'false',
      true,
      'redis://127.0.0.1:6379/0',
      RedisEventDispatcher,
    ],
  ])('creates one dispatcher of the broker kind with %s', async (_name, env, option, url, kind) => {
    // Prepare
    vi.stubEnv('CELERY_EVENTS', env);
    const runtime = createRuntime({ registry, broker: url, ...(option ? { events: option } : {}) });

    // Act
    const first = runtime.events?.();
    const second = runtime.events?.();

    // Assess
    expect(first).toBeInstanceOf(kind);
    expect(second).toBe(first);
    await first?.close();
  });

  it('leaves events off when the runtime says so, whatever the environment', () => {
    // Prepare
    vi.stubEnv('CELERY_EVENTS', 'true');
    const runtime = createRuntime({ registry, broker: 'redis://127.0.0.1:6379/0', events: false });

    // Act, Assess
    expect(runtime.events?.()).toBeNull();
  });
});

describe('celeryEventsFromEnv', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['false', false],
    ['0', false],
    ['OFF', false],
    ['true', true],
    ['True', true],
    ['1', true],
    ['yes', true],
  ])('reads %j as %s', (value, expected) => {
    expect(celeryEventsFromEnv({ CELERY_EVENTS: value })).toBe(expected);
  });

  it('refuses a word it does not know, naming the variable', () => {
    expect(() => celeryEventsFromEnv({ CELERY_EVENTS: 'ture' })).toThrow(InvalidConfigError);
    expect(() => celeryEventsFromEnv({ CELERY_EVENTS: 'ture' })).toThrow(/CELERY_EVENTS/);
  });
});
