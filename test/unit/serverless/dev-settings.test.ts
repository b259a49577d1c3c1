import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../../src/core/errors.js';
import { parseCeleryConfig } from '../../../src/serverless/celery-config.js';
import {
  DEV_ENV,
  type DevSettings,
  devSettingsFromEnv,
  readDevReport,
  withDevSettings,
  writeDevReport,
} from '../../../src/serverless/dev-settings.js';

const local: DevSettings = {
  broker: { kind: 'redis', url: 'redis://127.0.0.1:6379/4' },
  cronLockUrl: '',
  pollerSchedule: false,
  producerAuth: 'none',
  resultBackend: '',
};
const DIR = mkdtempSync(path.join(tmpdir(), 'sc-dev-report-'));

afterAll(() => rmSync(DIR, { recursive: true, force: true }));

describe('devSettingsFromEnv', () => {
  it('reads nothing outside `serverless-celery dev`', () => {
    expect(devSettingsFromEnv({})).toBeUndefined();
  });

  it('reads what dev writes', () => {
    expect(devSettingsFromEnv({ [DEV_ENV]: JSON.stringify(local) })).toEqual(local);
  });

  it('reads settings without a result backend as asking for none over serverless.yml', () => {
    const { resultBackend: _, ...older } = local;

    expect(devSettingsFromEnv({ [DEV_ENV]: JSON.stringify(older) })).toEqual(local);
  });

  it.each([
    ['not JSON', '{', /SERVERLESS_CELERY_DEV: \(root\): is not JSON/],
    [
      'a wrong broker kind',
      JSON.stringify({ ...local, broker: { kind: 'sqs', url: 'x' } }),
      /broker\.kind/,
    ],
    ['a missing field', JSON.stringify({ broker: local.broker }), /cronLockUrl/],
    [
      'a result backend that is not Redis',
      JSON.stringify({ ...local, resultBackend: 'amqp://127.0.0.1' }),
      /resultBackend: must start with redis:\/\//,
    ],
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

  it.each([
    [
      'the one dev asks for over serverless.yml’s',
      'redis://127.0.0.1:6379/8',
      'redis://127.0.0.1:6379/8',
    ],
    ['serverless.yml’s when dev asks for none', '', 'rediss://results.example:6379/1'],
  ])('keeps %s as result backend', (_, asked, stored) => {
    const written = parseCeleryConfig({
      app: './src/app.ts',
      resultBackend: 'rediss://results.example:6379/1',
    });

    const config = withDevSettings(written, { ...local, resultBackend: asked });

    expect(config.resultBackend).toBe(stored);
  });

  it('gives a service without a result backend the one dev asks for', () => {
    const written = parseCeleryConfig({ app: './src/app.ts', resultBackend: '' });

    const config = withDevSettings(written, {
      ...local,
      resultBackend: 'redis://127.0.0.1:6379/8',
    });

    expect(config.resultBackend).toBe('redis://127.0.0.1:6379/8');
    expect(withDevSettings(written, local).resultBackend).toBeUndefined();
  });
});

describe('the report to dev', () => {
  it.each([
    [
      'the result backend the functions get',
      'redis://:pw@127.0.0.1:6379/5',
      'redis://:pw@127.0.0.1:6379/5',
    ],
    ['none as empty', '', ''],
  ])('says %s, readable by its owner only', async (_, resultBackend, reported) => {
    // Prepare
    const reportFile = path.join(DIR, `report-${reported.length}.json`);
    const config = parseCeleryConfig({ app: './src/app.ts', resultBackend });

    // Act
    await writeDevReport({ ...local, reportFile }, config);

    // Assess
    expect(await readDevReport(reportFile)).toEqual({ resultBackend: reported });
    expect(statSync(reportFile).mode & 0o777).toBe(0o600);
  });

  it('is written only where dev asks, and read as absent when the plugin wrote none', async () => {
    await writeDevReport(local, parseCeleryConfig({ app: './src/app.ts' }));

    expect(await readDevReport(path.join(DIR, 'none.json'))).toBeUndefined();
  });

  it('refuses a file the plugin did not write, naming it', async () => {
    const file = path.join(DIR, 'bad.json');
    writeFileSync(file, '{"resultBackend": 1}');

    await expect(readDevReport(file)).rejects.toThrow(
      new RegExp(`^${file.replaceAll('.', '\\.')}: resultBackend: `),
    );
  });
});
