import { inspect } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadRedisClient } from '../../../../src/brokers/redis/redis-client.js';
import {
  connectRedis,
  isRedisAuthFailure,
  redisFailure,
} from '../../../../src/brokers/redis/redis-connection.js';
import { BrokerError } from '../../../../src/core/errors.js';

const SECRET = 's3cret-Pa55';
const URL_WITH_SECRET = `redis://worker:${SECRET}@cache.internal:6380/3`;

/** An error as ioredis raises it: a Node system error code, or a command attached. */
function ioredisError(
  message: string,
  extra: { code?: string; command?: unknown; previousErrors?: Error[] } = {},
): Error {
  return Object.assign(new Error(message), extra);
}

describe('connectRedis', () => {
  beforeAll(async () => {
    await loadRedisClient();
  });

  it.each([
    {
      url: `redis://worker:${SECRET}@cache.internal:6380/3`,
      expected: { host: 'cache.internal', port: 6380, db: 3, username: 'worker', password: SECRET },
    },
    { url: 'redis://:pw@10.0.0.7:6379/0', expected: { host: '10.0.0.7', db: 0, password: 'pw' } },
    { url: 'rediss://cache.internal:6380/1', expected: { db: 1, tls: true } },
  ])('makes a client that has not connected yet for $url', ({ url, expected }) => {
    // Act
    const { client } = connectRedis({ url, connectTimeoutMs: 1000, connectionName: 'sc:test' });

    // Assess
    try {
      expect(client.status).toBe('wait');
      expect(client.options).toMatchObject({ ...expected, connectionName: 'sc:test' });
    } finally {
      client.disconnect();
    }
  });

  it.each([
    {
      url: 'rediss://cache:6380/0',
      tls: { ca: 'PEM', rejectUnauthorized: true },
      expected: { ca: 'PEM', rejectUnauthorized: true },
    },
    {
      url: 'rediss://cache:6380/0',
      tls: { rejectUnauthorized: false },
      expected: { rejectUnauthorized: false },
    },
    { url: 'redis://cache:6379/0', tls: { rejectUnauthorized: false }, expected: undefined },
  ])('hands TLS options $tls to ioredis for $url only when it is rediss://', (row) => {
    // Act
    const { client } = connectRedis({ url: row.url, connectTimeoutMs: 1000, tls: row.tls });

    // Assess
    try {
      expect((client.options as { tls?: unknown }).tls).toEqual(row.expected);
    } finally {
      client.disconnect();
    }
  });
});

describe('redisFailure', () => {
  it.each([
    [ioredisError('connect ECONNREFUSED', { code: 'ECONNREFUSED' }), 'connection refused'],
    [ioredisError('getaddrinfo ENOTFOUND', { code: 'ENOTFOUND' }), 'host not found'],
    [ioredisError('getaddrinfo EAI_AGAIN', { code: 'EAI_AGAIN' }), 'host not found'],
    [ioredisError('connect ETIMEDOUT', { code: 'ETIMEDOUT' }), 'connection timed out'],
    [ioredisError('WRONGPASS invalid username-password pair'), 'authentication failed'],
    [ioredisError('NOAUTH Authentication required.'), 'authentication required'],
    [ioredisError('ERR invalid password'), 'authentication failed'],
    [ioredisError('OOM command not allowed'), 'OOM command not allowed'],
    // Key names quoted in a reply are not codes: only the reply's first word is.
    [
      ioredisError("ERR user_script:1: key 'wrongpass-noauth' holds the wrong kind of value"),
      "ERR user_script:1: key 'wrongpass-noauth'",
    ],
    [ioredisError('WRONGTYPE key NOAUTH:WRONGPASS holds a list'), 'WRONGTYPE key NOAUTH:WRONGPASS'],
    ['a string thrown', 'a string thrown'],
    [
      ioredisError('EXECABORT Transaction discarded because of previous errors.', {
        previousErrors: [ioredisError('OOM command not allowed when used memory > maxmemory')],
      }),
      'OOM command not allowed when used memory > maxmemory (the transaction was discarded)',
    ],
    [
      ioredisError('EXECABORT Transaction discarded because of previous errors.'),
      'EXECABORT Transaction discarded',
    ],
  ])('names the endpoint and explains %s as %s', (error, reason) => {
    // Act
    const failure = redisFailure(URL_WITH_SECRET, 'publish to events', error);

    // Assess
    expect(failure).toBeInstanceOf(BrokerError);
    expect(failure.message).toMatch(
      /^Redis at cache\.internal:6380\/3: publish to events failed: /,
    );
    expect(failure.message).toContain(reason);
    expect(failure.message).not.toContain(SECRET);
  });

  it('explains by the connection error when one was seen, keeping the command error as cause', () => {
    // Prepare
    const commandError = ioredisError('Reached the max retries per request limit');
    const connectionError = ioredisError('connect ECONNREFUSED', { code: 'ECONNREFUSED' });

    // Act
    const failure = redisFailure(
      URL_WITH_SECRET,
      'receive from events',
      commandError,
      connectionError,
    );

    // Assess
    expect(failure.message).toContain('connection refused');
    expect(failure.cause).toBe(commandError);
  });

  it.each([
    ['hello', ['3', 'AUTH', 'worker', SECRET]],
    ['auth', ['worker', SECRET]],
    ['AUTH', [SECRET]],
  ])('masks the arguments of a failed %s command in the cause', (name, args) => {
    // Prepare
    const error = ioredisError('WRONGPASS invalid username-password pair', {
      command: { name, args },
    });

    // Act
    const failure = redisFailure(URL_WITH_SECRET, 'inspect events', error);

    // Assess
    expect(inspect(failure, { depth: 10 })).not.toContain(SECRET);
    expect((failure.cause as { command: unknown }).command).toEqual({ name, args: ['***'] });
  });

  it('keeps the arguments of other failed commands, which carry no credentials', () => {
    // Prepare
    const command = { name: 'lpush', args: ['events', '{}'] };
    const error = ioredisError('WRONGTYPE Operation against a key', { command });

    // Act
    const failure = redisFailure(URL_WITH_SECRET, 'publish 1 message(s)', error);

    // Assess
    expect((failure.cause as { command: unknown }).command).toEqual(command);
  });
});

describe('cluster failures', () => {
  const CLUSTER_URL = `rediss+cluster://:${SECRET}@a.internal:7000,b.internal:7001/`;
  const noSlotMap = (lastNodeError?: Error) =>
    Object.assign(
      new Error('Failed to refresh slots cache.'),
      lastNodeError ? { lastNodeError } : {},
    );
  const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });

  it.each([
    [noSlotMap(), 'no node of the cluster answered', 'TLS certificate trusted (tls.ca)'],
    [noSlotMap(reply('WRONGPASS invalid username-password pair')), 'authentication failed', ''],
    [
      new Error('Too many Cluster redirections. Last error: ReplyError: TRYAGAIN Multiple keys'),
      'the cluster did not serve these keys',
      'TRYAGAIN',
    ],
    [new Error('Connection is closed.'), 'the cluster did not serve these keys', ''],
  ])('names the cluster by its nodes and explains %s', (error, reason, detail) => {
    // Act
    const failure = redisFailure(CLUSTER_URL, 'publish to events', error);

    // Assess
    expect(failure.message).toMatch(
      /^Redis at cluster a\.internal:7000,b\.internal:7001: publish to events failed: /,
    );
    expect(failure.message).toContain(reason);
    expect(failure.message).toContain(detail);
    expect(inspect(failure, { depth: 10 })).not.toContain(SECRET);
  });

  it('does not ask for a certificate on a cluster without TLS', () => {
    const failure = redisFailure('redis+cluster://a:7000/', 'receive from q', noSlotMap());

    expect(failure.message).toContain('no node of the cluster answered');
    expect(failure.message).not.toContain('tls.ca');
  });

  it('tells a refused password behind a missing slot map, so that a secret is read anew', () => {
    expect(isRedisAuthFailure(noSlotMap(reply('WRONGPASS invalid username-password pair')))).toBe(
      true,
    );
    expect(isRedisAuthFailure(noSlotMap())).toBe(false);
    expect(isRedisAuthFailure(noSlotMap(new Error('Connection is closed.')))).toBe(false);
  });

  it("reports a node's refusal of the password as the client's error", async () => {
    // Prepare
    await loadRedisClient();
    const { client, lastError } = connectRedis({ url: CLUSTER_URL, connectTimeoutMs: 1000 });
    const refusal = reply('WRONGPASS invalid username-password pair');
    try {
      // Act
      client.emit('node error', refusal, 'a.internal:7000');
      client.emit('node error', new Error('Connection is closed.'), 'a.internal:7000');

      // Assess
      expect(lastError()).toBe(refusal);
    } finally {
      client.disconnect();
    }
  });
});
