import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BROKER_URL,
  describeEndpoint,
  parseBrokerConfig,
  redactUrl,
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
  ])('never shows the password in the error for %s', (_, input) => {
    // Act
    const error = configError(() => parseBrokerConfig(input as never));

    // Assess
    expect(inspect(error, { depth: 10 })).not.toContain(SECRET);
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
