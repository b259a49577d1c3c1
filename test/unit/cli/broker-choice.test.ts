import { describe, expect, it } from 'vitest';
import {
  type BrokerIdentity,
  chooseBroker,
  identifyBroker,
  START_RABBITMQ,
  START_REDIS,
  startHint,
} from '../../../src/cli/broker-choice.js';
import { sleep } from '../../../src/cli/context.js';
import { AppConfigError } from '../../../src/cli/exit-codes.js';
import { createRegistry } from '../../../src/core/registry.js';
import { testContext } from '../../helpers/cli.js';
import { fakeBroker } from '../../helpers/lambda.js';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:broker-AbCdEf';
const app = { module: 'test-app', registry: createRegistry({ tasks: [], queues: [] }) };

describe('chooseBroker with BROKER_SECRET_ARN', () => {
  it.each([
    ['BROKER_URL', undefined, 'amqps://mq:5671/', ARN],
    ['--broker naming the same broker', 'amqps://mq:5671/', 'amqps://mq:5671/', ARN],
    [
      '--broker naming another broker',
      'redis://127.0.0.1:6379/0',
      'redis://127.0.0.1:6379/0',
      undefined,
    ],
  ])('opens %s with the secret only when it is BROKER_URL', (_, flag, url, secretArn) => {
    // Prepare
    const context = testContext({
      broker: fakeBroker(),
      env: { BROKER_URL: 'amqps://mq:5671/', BROKER_SECRET_ARN: ARN },
    });

    // Act
    chooseBroker(context, app, flag).open();

    // Assess
    const [config] = context.brokerConfigs as { url: string; secretArn?: string }[];
    expect(config?.url).toBe(url);
    expect(config?.secretArn).toBe(secretArn);
  });

  it('refuses a BROKER_URL holding a password beside the secret, without quoting it', () => {
    // Prepare
    const context = testContext({
      env: { BROKER_URL: 'amqps://app:Sup3r-s3cret@mq:5671/', BROKER_SECRET_ARN: ARN },
    });

    // Act
    const attempt = () => chooseBroker(context, app, undefined);

    // Assess
    expect(attempt).toThrow(AppConfigError);
    expect(attempt).toThrow(/^BROKER_URL: the url holds a password too/);
    expect(attempt).not.toThrow(/Sup3r-s3cret/);
  });
});

describe('startHint', () => {
  it.each([
    ['redis://127.0.0.1:6379/0', 'redis', 'connection refused', START_REDIS],
    [
      'redis://localhost:6390/2',
      'redis',
      'connect ECONNREFUSED',
      START_REDIS.replace('6379', '6390'),
    ],
    ['redis://127.0.0.1/0', 'redis', 'connection refused', START_REDIS],
    ['amqp://guest:guest@127.0.0.1:5672/', 'rabbitmq', 'connection refused', START_RABBITMQ],
    ['redis://cache.internal:6379/0', 'redis', 'connection refused', null],
    ['redis://127.0.0.1:6379/0', 'redis', 'authentication failed', null],
    ['not a url', 'redis', 'connection refused', null],
  ] as const)('%s, %s, %j → %s', (url, kind, reason, hint) => {
    expect(startHint(url, kind, reason)).toBe(hint);
  });
});

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

describe('identifyBroker', () => {
  it.each<[string, DistributiveOmit<BrokerIdentity, 'source'>]>([
    [
      'redis://:s3cret@127.0.0.1:6379/3',
      { kind: 'redis', host: '127.0.0.1', port: 6379, db: 3, tls: false },
    ],
    ['redis://cache', { kind: 'redis', host: 'cache', port: 6379, db: 0, tls: false }],
    [
      'rediss://u:p@cache.internal:6380/1?visibility_timeout=960',
      { kind: 'redis', host: 'cache.internal', port: 6380, db: 1, tls: true },
    ],
    [
      'amqp://guest:guest@127.0.0.1:5672/',
      { kind: 'rabbitmq', host: '127.0.0.1', port: 5672, vhost: '/', tls: false },
    ],
    [
      'amqps://u:p@b-1.mq.eu-west-1.amazonaws.com/sc%2Ftest',
      {
        kind: 'rabbitmq',
        host: 'b-1.mq.eu-west-1.amazonaws.com',
        port: 5671,
        vhost: 'sc/test',
        tls: true,
      },
    ],
  ])('names %s by host, port and db or vhost only', (url, expected) => {
    // Act
    const identity = identifyBroker(url, 'BROKER_URL');

    // Assess
    expect(identity).toEqual({ ...expected, source: 'BROKER_URL' });
    expect(JSON.stringify(identity)).not.toMatch(/s3cret|guest|"p"/);
  });
});

describe('sleep', () => {
  it('resolves early when its signal aborts, and at once for an aborted signal', async () => {
    // Prepare
    const stop = new AbortController();
    const started = Date.now();

    // Act
    const waiting = sleep(10_000, stop.signal);
    setTimeout(() => stop.abort(), 10);
    await waiting;
    await sleep(10_000, stop.signal);

    // Assess
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
