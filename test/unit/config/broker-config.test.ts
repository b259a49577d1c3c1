import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BROKER_URL,
  describeEndpoint,
  parseBrokerConfig,
  redactUrl,
  redisTransportOptions,
} from '../../../src/config/broker-config.js';
import { InvalidConfigError } from '../../../src/core/errors.js';

const SECRET = 's3cret-Pa55';

/** The error `action` throws, which must be an {@link InvalidConfigError}. */
function configError(action: () => unknown): InvalidConfigError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError);
    return error as InvalidConfigError;
  }
  throw new Error('expected an InvalidConfigError');
}

describe('parseBrokerConfig', () => {
  it.each([
    ['redis://127.0.0.1:6379/5'],
    [`redis://:${SECRET}@cache.internal:6380/0`],
    [`redis://worker:${SECRET}@cache.internal:6380/0`],
    ['rediss://cache.internal:6380/2'],
  ])('turns the bare url %s into Redis options with defaults', (url) => {
    // Act
    const config = parseBrokerConfig(url);

    // Assess
    expect(config).toEqual({
      kind: 'redis',
      url,
      keyPrefix: '',
      visibilityTimeout: 3600,
      connectTimeoutMs: 5000,
    });
  });

  it.each([
    ['redis', 'rediss://cache:6380/0'],
    ['redis', 'redis://worker@cache:6379/0'],
    ['rabbitmq', 'amqps://app@b-1.mq.eu-west-1.amazonaws.com:5671/'],
  ] as const)('keeps the secretArn of a %s url without a password (%s)', (kind, url) => {
    // Act
    const config = parseBrokerConfig({ kind, url, secretArn: 'arn:aws:secretsmanager:x' });

    // Assess
    expect(config).toMatchObject({ url, secretArn: 'arn:aws:secretsmanager:x' });
  });

  it('fills in the defaults of a Redis options object', () => {
    // Act
    const config = parseBrokerConfig({ kind: 'redis' });

    // Assess
    expect(config).toMatchObject({
      url: DEFAULT_BROKER_URL,
      keyPrefix: '',
      visibilityTimeout: 3600,
    });
  });

  it.each([
    [{ rejectUnauthorized: false }, { rejectUnauthorized: false }],
    [{ ca: 'PEM' }, { ca: 'PEM', rejectUnauthorized: true }],
  ])('keeps the TLS options %j of a rediss:// url', (tls, expected) => {
    // Act
    const config = parseBrokerConfig({ kind: 'redis', url: 'rediss://cache:6380/0', tls });

    // Assess
    expect(config).toMatchObject({ tls: expected });
  });

  it.each([
    { input: { kind: 'redis', visibilityTimeot: 60 }, path: 'visibilityTimeot' },
    { input: { kind: 'redis', visibilityTimeout: 0 }, path: 'visibilityTimeout' },
    { input: { kind: 'redis', connectTimeoutMs: 1.5 }, path: 'connectTimeoutMs' },
    { input: { kind: 'redis', keyPrefix: 7 }, path: 'keyPrefix' },
    { input: { kind: 'redis', url: 'http://cache:6379/0' }, path: 'url' },
    { input: { kind: 'redis', url: 'redis://:pa/ss@cache:6379/0' }, path: 'url' },
    { input: { kind: 'redis', url: 'redis://cache:6379/0', tls: {} }, path: 'tls' },
    {
      input: { kind: 'redis', url: 'rediss://cache', tls: { rejectUnauthorised: false } },
      path: 'tls.rejectUnauthorised',
    },
    {
      input: { kind: 'redis', url: 'redis://:pw@cache:6379/0', secretArn: 'arn:s' },
      path: 'secretArn',
    },
    { input: { kind: 'rabbitmq', url: 'amqps://u:pw@mq/', secretArn: 'arn:s' }, path: 'secretArn' },
    { input: { kind: 'redis', secretArn: '' }, path: 'secretArn' },
    { input: 'memcached://cache:11211', path: 'url' },
    { input: { kind: 'sqs' }, path: 'kind' },
  ])('refuses $input with an error naming $path', ({ input, path }) => {
    // Act
    const error = configError(() => parseBrokerConfig(input as never));

    // Assess
    expect(error.issues.map((issue) => issue.path)).toContain(path);
    expect(error.message).toMatch(new RegExp(`^broker: .*${path.replace('.', '\\.')}: `));
  });

  it.each([
    ['an unsupported scheme', `memcached://user:${SECRET}@cache:11211`],
    ['an unsupported scheme and a password with a slash', `memcached://:${SECRET}/x@cache`],
    ['a password with an unencoded slash', `redis://:${SECRET}/x@cache:6379/0`],
    ['a redis kind with an http url', { kind: 'redis', url: `http://:${SECRET}@cache` }],
    ['TLS options on redis://', { kind: 'redis', url: `redis://:${SECRET}@cache`, tls: {} }],
    [
      'a password in the url beside a secret',
      { kind: 'rabbitmq', url: `amqps://app:${SECRET}@mq:5671/`, secretArn: 'arn:s' },
    ],
  ])('never shows the password in the error for %s', (_, input) => {
    // Act
    const error = configError(() => parseBrokerConfig(input as never));

    // Assess
    expect(inspect(error, { depth: 10 })).not.toContain(SECRET);
  });
});

describe('visibility_timeout in a Redis URL', () => {
  it.each([
    ['redis://cache:6379/0?visibility_timeout=960', 'redis://cache:6379/0', 960],
    ['redis://cache:6379/0?visibility_timeout=0.5', 'redis://cache:6379/0', 0.5],
    [
      `redis://:${SECRET}@cache:6379/0?family=6&visibility_timeout=960&db=2`,
      `redis://:${SECRET}@cache:6379/0?family=6&db=2`,
      960,
    ],
    ['rediss://cache:6380/1?visibility_timeout=120#x', 'rediss://cache:6380/1#x', 120],
  ])('reads %s as the url %s with a visibility timeout of %d s', (input, url, seconds) => {
    // Act
    const config = parseBrokerConfig(input);

    // Assess
    expect(config).toMatchObject({ kind: 'redis', url, visibilityTimeout: seconds });
  });

  it('accepts the query parameter in an options object, and an explicit value that agrees', () => {
    // Act
    const configs = [
      parseBrokerConfig({ kind: 'redis', url: 'redis://cache/0?visibility_timeout=960' }),
      parseBrokerConfig({
        kind: 'redis',
        url: 'redis://cache/0?visibility_timeout=960',
        visibilityTimeout: 960,
      }),
    ];

    // Assess
    for (const config of configs) {
      expect(config).toMatchObject({ url: 'redis://cache/0', visibilityTimeout: 960 });
    }
  });

  it('keeps the default of 3600 s and the url as written when the url sets none', () => {
    // Act
    const config = parseBrokerConfig('redis://cache:6379/0?family=6');

    // Assess
    expect(config).toMatchObject({ url: 'redis://cache:6379/0?family=6', visibilityTimeout: 3600 });
  });

  it.each([['abc'], ['0'], ['-5'], [''], ['1e3'], ['0x10'], ['960s']])(
    'refuses visibility_timeout=%s with an error naming url.visibility_timeout',
    (value) => {
      // Act
      const error = configError(() =>
        parseBrokerConfig(`redis://:${SECRET}@cache:6379/0?visibility_timeout=${value}`),
      );

      // Assess
      expect(error.issues.map((issue) => issue.path)).toEqual(['url.visibility_timeout']);
      expect(error.message).toMatch(/^broker: url\.visibility_timeout: must be a positive number/);
      expect(inspect(error, { depth: 10 })).not.toContain(SECRET);
    },
  );

  it('refuses visibility_timeout given twice', () => {
    // Act
    const error = configError(() =>
      parseBrokerConfig('redis://cache/0?visibility_timeout=60&visibility_timeout=60'),
    );

    // Assess
    expect(error.message).toBe('broker: url.visibility_timeout: is given more than once');
  });

  it('refuses an explicit visibilityTimeout that disagrees with the url', () => {
    // Act
    const error = configError(() =>
      parseBrokerConfig({
        kind: 'redis',
        url: 'redis://cache/0?visibility_timeout=960',
        visibilityTimeout: 3600,
      }),
    );

    // Assess
    expect(error.issues).toEqual([
      {
        path: 'visibilityTimeout',
        message: "3600 disagrees with the url's visibility_timeout=960",
      },
    ]);
  });

  it('leaves an AMQP url alone', () => {
    // Act
    const config = parseBrokerConfig('amqp://guest:guest@mq:5672/?visibility_timeout=960');

    // Assess
    expect(config).toMatchObject({ url: 'amqp://guest:guest@mq:5672/?visibility_timeout=960' });
  });

  it.each([
    ['redis://cache:6379/0', undefined],
    ['redis://cache:6379/0?visibility_timeout=30', 30],
  ])('tells whether %s sets a visibility timeout', (url, seconds) => {
    // Act
    const options = redisTransportOptions(url);

    // Assess
    expect(options.visibilityTimeout).toBe(seconds);
  });
});

describe('redactUrl', () => {
  it.each([
    [`redis://:${SECRET}@cache:6379/0`, 'redis://:***@cache:6379/0'],
    [`redis://worker:${SECRET}@cache:6379/0`, 'redis://worker:***@cache:6379/0'],
    [`rediss://worker:${SECRET}@cache`, 'rediss://worker:***@cache'],
    [`amqp://guest:${SECRET}@mq:5672/vhost`, 'amqp://guest:***@mq:5672/vhost'],
    [`redis://:p@${SECRET}@cache:6379/0`, 'redis://:***@cache:6379/0'],
    [`redis://:${SECRET}/x@cache:6379/0`, 'redis://:***@cache:6379/0'],
    ['redis://cache:6379/0', 'redis://cache:6379/0'],
    ['not a url', 'not a url'],
  ])('shows %s as %s', (url, expected) => {
    // Act
    const redacted = redactUrl(url);

    // Assess
    expect(redacted).toBe(expected);
  });
});

describe('describeEndpoint', () => {
  it.each([
    [`redis://:${SECRET}@cache.internal:6380/3`, 'cache.internal:6380/3'],
    [`redis://worker:${SECRET}@10.0.0.7:6379/0`, '10.0.0.7:6379/0'],
    ['rediss://cache.internal', 'cache.internal:(default port)'],
    ['redis://cache:6379', 'cache:6379'],
    [`redis://:${SECRET}/x@cache:6379/0`, 'redis://:***@cache:6379/0'],
  ])('describes %s as %s', (url, expected) => {
    // Act
    const endpoint = describeEndpoint(url);

    // Assess
    expect(endpoint).toBe(expected);
  });
});
