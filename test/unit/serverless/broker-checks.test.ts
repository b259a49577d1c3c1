import { describe, expect, it } from 'vitest';
import {
  brokerIssues,
  brokerSecretArn,
  deploymentIssues,
  eventSourceVirtualHost,
  redactPassword,
  urlPassword,
} from '../../../src/serverless/broker-checks.js';
import type { BrokerSettings } from '../../../src/serverless/broker-schema.js';
import { parseCeleryConfig } from '../../../src/serverless/celery-config.js';

const PATH = 'custom.celery.broker';
const MQ = { arn: 'arn:aws:mq:broker', secretArn: 'arn:aws:secretsmanager:mq-user' };

/** `custom.celery.broker` after parsing, from what serverless.yml would hold. */
function broker(written: Record<string, unknown>): BrokerSettings {
  return parseCeleryConfig({ app: './app.ts', broker: written }).broker;
}

/** The issues `parseCeleryConfig` refuses a broker with, as `[path, message]`. */
function refusals(written: Record<string, unknown>): [string, string][] {
  try {
    parseCeleryConfig({ app: './app.ts', broker: written });
  } catch (error) {
    return (error as { issues: { path: string; message: string }[] }).issues.map((issue) => [
      issue.path,
      issue.message,
    ]);
  }
  return [];
}

describe('brokerSecretArn', () => {
  it.each([
    ['Redis without a secret', { kind: 'redis' }, undefined],
    ['Redis, a param left at ""', { kind: 'redis', secretArn: '' }, undefined],
    ['Redis with its AUTH token', { kind: 'redis', secretArn: 'arn:token' }, 'arn:token'],
    ['RabbitMQ, the event source’s', { kind: 'rabbitmq', amazonMq: MQ }, MQ.secretArn],
    [
      'RabbitMQ, "" falls back to the event source’s',
      { kind: 'rabbitmq', secretArn: '', amazonMq: MQ },
      MQ.secretArn,
    ],
    [
      'RabbitMQ, its own over the event source’s',
      { kind: 'rabbitmq', secretArn: 'arn:app', amazonMq: MQ },
      'arn:app',
    ],
    ['RabbitMQ, no event source', { kind: 'rabbitmq', amazonMq: { arn: '' } }, undefined],
  ])('reads %s', (_case, written, expected) => {
    expect(brokerSecretArn(broker(written))).toEqual(expected);
  });
});

describe('URL helpers', () => {
  it.each([
    ['amqps://celery:s%40cret@mq:5671', 's@cret'],
    ['redis://:token@cache:6379/0', 'token'],
    ['redis://cache:6379/0', undefined],
    ['rediss+cluster://:cl%40ster@a:7000,b:7001/', 'cl@ster'],
    [{ 'Fn::ImportValue': 'celery-redis-url' }, undefined],
  ])('finds the password of %j', (url, expected) => {
    expect(urlPassword(url)).toBe(expected);
  });

  it('redacts a password for messages', () => {
    expect(redactPassword('amqps://celery:hunter2@mq:5671/')).toBe('amqps://celery:***@mq:5671/');
  });

  it.each([
    [{ kind: 'rabbitmq', url: 'amqps://mq:5671/orders' }, 'orders'],
    [{ kind: 'rabbitmq', url: 'amqps://mq:5671/team%2Fa' }, 'team/a'],
    [{ kind: 'rabbitmq', url: 'amqps://mq:5671' }, undefined],
    [
      { kind: 'rabbitmq', url: 'amqps://mq:5671/', amazonMq: { ...MQ, virtualHost: '' } },
      undefined,
    ],
    [
      {
        kind: 'rabbitmq',
        url: { 'Fn::ImportValue': 'celery-amqps-url' },
        amazonMq: { ...MQ, virtualHost: 'orders' },
      },
      'orders',
    ],
    [{ kind: 'redis', url: 'redis://cache:6379/0' }, undefined],
  ])('gives the event source the vhost of %j: %s', (written, expected) => {
    expect(eventSourceVirtualHost(broker(written))).toBe(expected);
  });
});

describe('brokerIssues (every command)', () => {
  it.each([
    [
      'a password in the URL beside broker.secretArn',
      { kind: 'redis', url: 'rediss://:tok@cache:6379/0', secretArn: 'arn:token' },
      `${PATH}.url`,
      'holds a password (rediss://:***@cache:6379/0) while the functions read their credentials from custom.celery.broker.secretArn',
    ],
    [
      'a password in the URL beside the event source’s secret',
      { kind: 'rabbitmq', url: 'amqps://celery:pw@mq:5671', amazonMq: MQ },
      `${PATH}.url`,
      'custom.celery.broker.amazonMq.secretArn',
    ],
    [
      'a vhost other than the URL’s',
      {
        kind: 'rabbitmq',
        url: 'amqps://mq:5671/orders',
        amazonMq: { ...MQ, virtualHost: 'billing' },
      },
      `${PATH}.amazonMq.virtualHost`,
      'is "billing" but the broker URL\'s vhost is "orders"',
    ],
    [
      'an Amazon MQ ARN without its secret',
      { kind: 'rabbitmq', amazonMq: { arn: 'arn:mq' } },
      `${PATH}.amazonMq.secretArn`,
      'required with an arn',
    ],
  ])('refuses %s, naming the field', (_case, written, path, message) => {
    const found = refusals(written);

    expect(found.map(([at]) => at)).toEqual([path]);
    expect(found[0]?.[1]).toContain(message);
  });

  it('accepts a URL without credentials beside a secret, and the URL’s own vhost', () => {
    expect(
      brokerIssues(
        broker({
          kind: 'rabbitmq',
          url: 'amqps://mq:5671/orders',
          amazonMq: { ...MQ, virtualHost: 'orders' },
        }),
        PATH,
      ),
    ).toEqual([]);
  });
});

describe('deploymentIssues (package time)', () => {
  it.each([
    ['prod', { kind: 'redis' }, "is not set (the runtime's default is redis://127.0.0.1:6379/0)"],
    ['prod', { kind: 'redis', url: 'redis://127.0.0.1:6379/0' }, 'is local'],
    ['staging', { kind: 'rabbitmq', url: 'amqp://localhost:5672/', amazonMq: MQ }, 'is local'],
    ['prod', { kind: 'redis', url: 'redis://[::1]:6379/0' }, 'is local'],
    ['prod', { kind: 'redis', url: 'redis+cluster://cache:7000,127.0.0.1:7001/' }, 'is local'],
    ['prod', { kind: 'redis', url: 'redis+cluster://[::1]:7000/' }, 'is local'],
  ])('refuses stage %s a broker URL no function can reach: %j', (stage, written, what) => {
    const { errors } = deploymentIssues(broker(written), stage, PATH);

    expect(errors).toEqual([
      {
        path: `${PATH}.url`,
        message: expect.stringContaining(`${what}, and stage ${stage} is not one of local, dev`),
      },
    ]);
  });

  it.each(['local', 'dev'])('only warns about the local broker on stage %s', (stage) => {
    const { errors, warnings } = deploymentIssues(broker({ kind: 'redis' }), stage, PATH);

    expect(errors).toEqual([]);
    expect(warnings).toEqual([expect.stringMatching(/^custom\.celery\.broker\.url is not set/)]);
  });

  it('accepts a remote URL, warning about a password it holds and a missing event source', () => {
    const { errors, warnings } = deploymentIssues(
      broker({ kind: 'rabbitmq', url: 'amqps://celery:pw@mq.example:5671' }),
      'prod',
      PATH,
    );

    expect(errors).toEqual([]);
    expect(warnings).toEqual([
      expect.stringContaining(
        'custom.celery.broker.url holds a password, which lands in the template',
      ),
      expect.stringContaining('custom.celery.broker.amazonMq.arn is not set'),
    ]);
  });

  it('takes a URL CloudFormation resolves as written', () => {
    const written = { kind: 'redis', url: { 'Fn::ImportValue': 'celery-redis-url' } };

    expect(deploymentIssues(broker(written), 'prod', PATH)).toEqual({ errors: [], warnings: [] });
  });
});
