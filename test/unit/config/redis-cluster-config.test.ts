import { describe, expect, it } from 'vitest';
import { describeEndpoint, parseBrokerConfig } from '../../../src/config/broker-config.js';
import { withCredentials } from '../../../src/config/broker-credentials.js';
import { hasHashTag, redisTransportOptions } from '../../../src/config/redis-transport-options.js';
import {
  editRedisUrl,
  isRedisClusterUrl,
  singleNodeForm,
  splitClusterUrl,
} from '../../../src/config/redis-url.js';
import { parseResultBackendConfig } from '../../../src/config/result-backend-config.js';
import { InvalidConfigError } from '../../../src/core/errors.js';

const SECRET = 'cl0ster-Pa55';

function issuesOf(action: () => unknown): readonly { path: string; message: string }[] {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError);
    return (error as InvalidConfigError).issues;
  }
  throw new Error('expected an InvalidConfigError');
}

describe('cluster URLs', () => {
  it('takes a host list apart and keeps everything else on the first host', () => {
    expect(splitClusterUrl(`rediss+cluster://:${SECRET}@a.example:7000,b:7001/0?x=1`)).toEqual({
      nodes: [
        { host: 'a.example', port: 7000 },
        { host: 'b', port: 7001 },
      ],
      single: `rediss://:${SECRET}@a.example:7000/0?x=1`,
    });
  });

  it('reads IPv6 hosts and a missing port as 6379', () => {
    expect(splitClusterUrl('redis+cluster://[::1]:7000,cache/')?.nodes).toEqual([
      { host: '::1', port: 7000 },
      { host: 'cache', port: 6379 },
    ]);
  });

  it.each([
    ['redis+cluster:///0'],
    ['redis+cluster://a:7000,,b:7001/'],
    ['redis+cluster://a:x/'],
    ['redis+cluster://a:70000/'],
  ])('refuses the host list of %s', (url) => {
    expect(splitClusterUrl(url)).toBeUndefined();
  });

  it('tells cluster URLs from single-node ones', () => {
    expect(isRedisClusterUrl('REDISS+CLUSTER://a:1/')).toBe(true);
    expect(isRedisClusterUrl('redis://a:1/')).toBe(false);
    expect(singleNodeForm('redis://a:1/2')).toBe('redis://a:1/2');
  });

  it('applies an edit of the single-node form and puts the host list back', () => {
    const edited = editRedisUrl('redis+cluster://a:7000,[::1]:7001/?keep=1', (single) => {
      const url = new URL(single);
      url.password = 'p';
      return url.href;
    });
    expect(edited).toBe('redis+cluster://:p@a:7000,[::1]:7001/?keep=1');
  });

  it('gets the credentials of a secret, percent-encoded, on every form', () => {
    expect(withCredentials('rediss+cluster://a:7000,b:7001/', { password: 'p@ss/%41' })).toBe(
      'rediss+cluster://:p%40ss%2F%2541@a:7000,b:7001/',
    );
  });

  it('is described by its nodes, never its password', () => {
    const text = describeEndpoint(`rediss+cluster://u:${SECRET}@a:7000,b:7001/`);
    expect(text).toBe('cluster a:7000,b:7001');
  });
});

describe('a cluster broker configuration', () => {
  it('defaults the key prefix to a hash tag, {celery}:', () => {
    const config = parseBrokerConfig('redis+cluster://a:7000,b:7001/');
    expect(config).toMatchObject({ kind: 'redis', keyPrefix: '{celery}:' });
  });

  it("takes kombu's global_keyprefix and visibility_timeout off the URL", () => {
    const config = parseBrokerConfig(
      'rediss+cluster://a:7000/?global_keyprefix=%7Bjobs%7D:&visibility_timeout=900&family=6',
    );
    expect(config).toMatchObject({
      url: 'rediss+cluster://a:7000/?family=6',
      keyPrefix: '{jobs}:',
      visibilityTimeout: 900,
    });
  });

  it('takes global_keyprefix off a single-node URL too', () => {
    expect(parseBrokerConfig('redis://a:6379/0?global_keyprefix=app:')).toMatchObject({
      url: 'redis://a:6379/0',
      keyPrefix: 'app:',
    });
  });

  it.each([
    [
      'a prefix without a hash tag',
      { url: 'redis+cluster://a:1/', keyPrefix: 'app:' },
      'keyPrefix',
    ],
    ['an empty prefix', { url: 'redis+cluster://a:1/?global_keyprefix=' }, 'keyPrefix'],
    ['an empty hash tag', { url: 'redis+cluster://a:1/', keyPrefix: '{}:' }, 'keyPrefix'],
    ['a database other than 0', { url: 'redis+cluster://a:1/3' }, 'url'],
    ['a wrong host list', { url: 'redis+cluster://a:1,b:x/' }, 'url'],
    ['TLS options on a plain cluster', { url: 'redis+cluster://a:1/', tls: {} }, 'tls'],
  ])('refuses %s, naming the field', (_name, options, path) => {
    const issues = issuesOf(() => parseBrokerConfig({ kind: 'redis', ...options }));
    expect(issues.map((issue) => issue.path)).toEqual([path]);
    expect(issues[0]?.message).not.toContain(SECRET);
  });

  it('refuses a prefix that disagrees with the URL', () => {
    const issues = issuesOf(() =>
      parseBrokerConfig({
        kind: 'redis',
        url: 'redis+cluster://a:1/?global_keyprefix=%7Ba%7D:',
        keyPrefix: '{b}:',
      }),
    );
    expect(issues).toEqual([{ path: 'keyPrefix', message: expect.stringContaining('{a}:') }]);
  });

  it('takes TLS options with rediss+cluster://', () => {
    const config = parseBrokerConfig({
      kind: 'redis',
      url: 'rediss+cluster://a:1/',
      tls: { rejectUnauthorized: false },
    });
    expect(config).toMatchObject({ tls: { rejectUnauthorized: false } });
  });

  it('refuses a password in the URL beside a secret', () => {
    const issues = issuesOf(() =>
      parseBrokerConfig({
        kind: 'redis',
        url: `redis+cluster://:${SECRET}@a:1,b:2/`,
        secretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:x',
      }),
    );
    expect(issues.map((issue) => issue.path)).toEqual(['secretArn']);
  });
});

describe('hash tags', () => {
  it.each([
    ['{celery}:', true],
    ['app:{q}:', true],
    ['{}:', false],
    ['app:', false],
    ['}{x', false],
    ['{open:', false],
  ])('%s holds one: %s', (prefix, expected) => {
    expect(hasHashTag(prefix)).toBe(expected);
  });

  it('refuses global_keyprefix given twice', () => {
    const issues = issuesOf(() =>
      redisTransportOptions('redis://a/0?global_keyprefix=a&global_keyprefix=b'),
    );
    expect(issues).toEqual([{ path: 'url.global_keyprefix', message: 'is given more than once' }]);
  });
});

describe('a cluster result backend', () => {
  it('defaults to the broker prefix, reads Celery settings off the URL', () => {
    expect(parseResultBackendConfig('redis+cluster://a:1,b:2/?result_expires=60')).toMatchObject({
      url: 'redis+cluster://a:1,b:2/',
      keyPrefix: '{celery}:',
      expiresSeconds: 60,
    });
  });

  it('refuses a prefix without a hash tag', () => {
    const issues = issuesOf(() =>
      parseResultBackendConfig({ url: 'redis+cluster://a:1/', keyPrefix: 'r:' }),
    );
    expect(issues.map((issue) => issue.path)).toEqual(['keyPrefix']);
  });
});
