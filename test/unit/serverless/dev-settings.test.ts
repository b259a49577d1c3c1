import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../../src/core/errors.js';
import { parseCeleryConfig } from '../../../src/serverless/celery-config.js';
import {
  DEV_ENV,
  type DevSettings,
  devSettingsFromEnv,
  withDevSettings,
} from '../../../src/serverless/dev-settings.js';

const local: DevSettings = {
  broker: { kind: 'redis', url: 'redis://127.0.0.1:6379/4' },
  cronLockUrl: '',
  pollerSchedule: false,
  producerAuth: 'none',
};

describe('devSettingsFromEnv', () => {
  it('reads nothing outside `serverless-celery dev`', () => {
    expect(devSettingsFromEnv({})).toBeUndefined();
  });

  it('reads what dev writes', () => {
    expect(devSettingsFromEnv({ [DEV_ENV]: JSON.stringify(local) })).toEqual(local);
  });

  it.each([
    ['not JSON', '{', /SERVERLESS_CELERY_DEV: \(root\): is not JSON/],
    [
      'a wrong broker kind',
      JSON.stringify({ ...local, broker: { kind: 'sqs', url: 'x' } }),
      /broker\.kind/,
    ],
    ['a missing field', JSON.stringify({ broker: local.broker }), /cronLockUrl/],
  ])('refuses %s, naming the variable and the field', (_, text, says) => {
    const read = () => devSettingsFromEnv({ [DEV_ENV]: text });

    expect(read).toThrow(InvalidConfigError);
    expect(read).toThrow(says);
  });
});

describe('withDevSettings', () => {
  it('points the service at the local broker, schedule off, producer unsigned', () => {
    const written = parseCeleryConfig({
      app: './src/app.ts',
      broker: { kind: 'redis', url: 'rediss://prod.cache.amazonaws.com:6379/0' },
      poller: { memorySize: 512 },
      producers: { http: { path: '/jobs/{name}' } },
    });

    const config = withDevSettings(written, local);

    expect(config.broker).toEqual({ kind: 'redis', url: 'redis://127.0.0.1:6379/4' });
    expect(config.poller).toMatchObject({ scheduleEnabled: false, memorySize: 512 });
    expect(config.producers.http).toMatchObject({ auth: 'none', path: '/jobs/{name}' });
    expect(config.cron.lockUrl).toBeUndefined();
  });

  it('switches to the other broker without its Amazon MQ event source', () => {
    const written = parseCeleryConfig({
      app: './src/app.ts',
      broker: { kind: 'redis' },
      cron: { lockUrl: 'redis://127.0.0.1:6379/9' },
    });
    const rabbit: DevSettings = {
      ...local,
      broker: { kind: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:5672/' },
      cronLockUrl: 'amqp://guest:guest@127.0.0.1:5672/',
    };

    const config = withDevSettings(written, rabbit);

    expect(config.broker).toEqual({ kind: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:5672/' });
    expect(config.cron.lockUrl).toBe('amqp://guest:guest@127.0.0.1:5672/');
  });

  it('drops what only a deployment uses: the broker’s secrets, its event source, functionPrefix', () => {
    const written = parseCeleryConfig({
      app: './src/app.ts',
      functionPrefix: 'rp-',
      broker: {
        kind: 'rabbitmq',
        url: 'amqps://mq.example:5671',
        secretArn: 'arn:aws:secretsmanager:app-user',
        amazonMq: { arn: 'arn:aws:mq:broker', secretArn: 'arn:aws:secretsmanager:mq-user' },
      },
    });
    const rabbit: DevSettings = {
      ...local,
      broker: { kind: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:5672/' },
    };

    const config = withDevSettings(written, rabbit);

    expect(config.broker).toEqual({ kind: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:5672/' });
    expect(config.functionPrefix).toBeUndefined();
  });
});
