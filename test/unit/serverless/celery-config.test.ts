import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../../src/core/errors.js';
import {
  celeryConfigJsonSchema,
  parseCeleryConfig,
} from '../../../src/serverless/celery-config.js';

/** The issues `parseCeleryConfig` refuses `value` with. */
function issuesOf(value: unknown): { path: string; message: string }[] {
  try {
    parseCeleryConfig(value);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError);
    return [...(error as InvalidConfigError).issues];
  }
  throw new Error('parseCeleryConfig accepted the value');
}

describe('parseCeleryConfig', () => {
  it('needs only the app, and gives everything else its default', () => {
    // Act
    const config = parseCeleryConfig({ app: './src/app.ts' });

    // Assess
    expect(config).toEqual({
      app: './src/app.ts',
      broker: { kind: 'redis' },
      events: false,
      scheduleFailureQueue: true,
      defaults: {},
      tasks: {},
      poller: { scheduleEnabled: true },
      dispatcher: {},
      cron: {},
      producers: {
        http: { enabled: true, path: '/tasks/{name}', auth: 'iam', results: false },
        invoke: { enabled: true },
      },
    });
  });

  it('reads numbers and booleans given as --param strings', () => {
    // Act
    const config = parseCeleryConfig({
      app: './src/app.ts',
      broker: {
        kind: 'rabbitmq',
        amazonMq: { arn: 'arn:mq', secretArn: 'arn:secret', batchSize: '25' },
      },
      poller: { scheduleEnabled: 'false', timeout: '600' },
      tasks: { 'reports.send': { memorySize: '512', reservedConcurrency: 5 } },
    });

    // Assess
    expect(config.broker).toEqual({
      kind: 'rabbitmq',
      amazonMq: { arn: 'arn:mq', secretArn: 'arn:secret', batchSize: 25, maximumBatchingWindow: 1 },
    });
    expect(config.poller).toEqual({ scheduleEnabled: false, timeout: 600 });
    expect(config.tasks['reports.send']).toEqual({ memorySize: 512, reservedConcurrency: 5 });
  });

  it.each([
    [
      'a misspelt override',
      { tasks: { 'reports.send': { memroySize: 512 } } },
      'custom.celery.tasks.reports.send.memroySize',
      'unknown option',
    ],
    [
      'a timeout over Lambda’s 900 s',
      { defaults: { timeout: 1200 } },
      'custom.celery.defaults.timeout',
      '<=900',
    ],
    ['a broker nobody supports', { broker: { kind: 'sqs' } }, 'custom.celery.broker.kind', ''],
    [
      'a URL of the other broker',
      { broker: { kind: 'rabbitmq', url: 'redis://cache:6379/0' } },
      'custom.celery.broker.url',
      'amqp://',
    ],
    [
      'an Amazon MQ event source on Redis',
      { broker: { kind: 'redis', amazonMq: { arn: 'arn:mq' } } },
      'custom.celery.broker.amazonMq',
      'unknown option',
    ],
    [
      'reserved concurrency on the poller',
      { poller: { reservedConcurrency: 1 } },
      'custom.celery.poller.reservedConcurrency',
      'pollers hand over',
    ],
    [
      'a producer route without {name}',
      { producers: { http: { path: '/tasks' } } },
      'custom.celery.producers.http.path',
      '{name}',
    ],
    [
      'the result route without a result backend',
      { producers: { http: { results: true } } },
      'custom.celery.producers.http.results',
      'needs custom.celery.resultBackend: GET /results/{id} reads results from it',
    ],
    [
      'the result route with an empty result backend (a param left at its default)',
      { resultBackend: '', producers: { http: { results: 'true' } } },
      'custom.celery.producers.http.results',
      'needs custom.celery.resultBackend',
    ],
    [
      'the result route on a disabled HTTP producer',
      { resultBackend: 'redis://r:6379', producers: { http: { enabled: false, results: true } } },
      'custom.celery.producers.http.results',
      'needs producers.http.enabled: the route is on the HTTP producer',
    ],
    [
      'a functionPrefix with a character Lambda refuses in names',
      { functionPrefix: 'reports.prod-' },
      'custom.celery.functionPrefix',
      'letters, digits, - and _, at most 40',
    ],
    [
      'a log retention CloudWatch does not offer',
      { defaults: { logRetentionInDays: 31 } },
      'custom.celery.defaults.logRetentionInDays',
      'retention periods',
    ],
    [
      'a schedule failure queue flag that is not one',
      { scheduleFailureQueue: 'yes' },
      'custom.celery.scheduleFailureQueue',
      '',
    ],
    [
      'an Amazon MQ broker without its secret',
      { broker: { kind: 'rabbitmq', amazonMq: { arn: 'arn:mq' } } },
      'custom.celery.broker.amazonMq.secretArn',
      'required',
    ],
  ])('refuses %s, naming the field', (_case, given, path, message) => {
    // Act
    const issues = issuesOf({ app: './src/app.ts', ...given });

    // Assess
    expect(issues.map((issue) => issue.path)).toContain(path);
    expect(issues.find((issue) => issue.path === path)?.message).toContain(message);
  });

  it('asks for custom.celery.app when the section is missing', () => {
    // Act
    const issues = issuesOf(undefined);

    // Assess
    expect(issues).toEqual([
      {
        path: 'custom.celery.app',
        message: 'required: the module that exports your registry, e.g. ./src/app.ts',
      },
    ]);
  });
});

describe('celeryConfigJsonSchema', () => {
  it('describes the input the framework validates, in draft-07 terms', () => {
    // Act
    const schema = celeryConfigJsonSchema();

    // Assess
    expect(schema.$schema).toBeUndefined();
    expect(schema).toMatchObject({
      type: 'object',
      required: ['app'],
      additionalProperties: false,
    });
    // A number may arrive as a --param string: both are accepted before parsing.
    expect(JSON.stringify(schema)).toContain('"pattern":"^\\\\d+$"');
  });
});
