import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  amqpCredentialIssues,
  parseBrokerSecret,
  withCredentials,
} from '../../../src/config/broker-credentials.js';
import { InvalidConfigError } from '../../../src/core/errors.js';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:broker-AbCdEf';
const SECRET = 'Sup3r-s3cret-value';

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

describe('parseBrokerSecret', () => {
  it.each([
    [
      'the Amazon MQ event source secret',
      '{"username":"app","password":"pw"}',
      { username: 'app', password: 'pw' },
    ],
    [
      'a secret with fields it ignores',
      '{"engine":"rabbitmq","host":"b-1","username":"app","password":"pw","port":5671}',
      { username: 'app', password: 'pw' },
    ],
    ['a Redis AUTH token as JSON', '{"password":"token"}', { password: 'token' }],
    ['a Redis AUTH token as plain text', 'token-{not-json', { password: 'token-{not-json' }],
    ['an empty user name as none', '{"username":"","password":"pw"}', { password: 'pw' }],
    ['JSON after white space', '\n  {"password":"pw"}', { password: 'pw' }],
  ])('reads %s', (_, text, expected) => {
    // Act
    const credentials = parseBrokerSecret(text, ARN);

    // Assess
    expect(credentials).toEqual(expected);
  });

  it.each([
    ['an empty secret', '', ''],
    ['JSON without a password', '{"username":"app"}', 'password'],
    ['an empty password', '{"password":""}', 'password'],
    ['a password that is no string', '{"password":12345}', 'password'],
    ['a user name that is no string', '{"username":7,"password":"pw"}', 'username'],
  ])('refuses %s, naming the field', (_, text, path) => {
    // Act
    const error = configError(() => parseBrokerSecret(text, ARN));

    // Assess
    expect(error.issues.map((issue) => issue.path)).toEqual([path]);
    expect(error.message).toMatch(new RegExp(`^broker secret ${ARN}: `));
  });

  it.each([
    ['broken JSON', `{"username":"app","password":"${SECRET}"`],
    ['a user name of the wrong type', `{"username":["${SECRET}"],"password":"${SECRET}"}`],
  ])('never quotes the secret in the error for %s', (_, text) => {
    // Act
    const error = configError(() => parseBrokerSecret(text, ARN));

    // Assess
    expect(inspect(error, { depth: 10 })).not.toContain(SECRET);
  });
});

describe('withCredentials', () => {
  it.each([
    ['p@ss'],
    ['pa:ss'],
    ['pa/ss'],
    ['100%'],
    ['%41 is not A'],
    ['all @:/% ?#&=+ at once'],
    ["!'()*~._-"],
  ])('puts the password %j where ioredis and amqplib read it back unchanged', (password) => {
    // Act
    const url = withCredentials('amqps://app@mq:5671/vh?heartbeat=30', { password });

    // Assess
    const parsed = new URL(url);
    // ioredis decodes with decodeURIComponent, amqplib with unescape: the same for ASCII.
    expect(decodeURIComponent(parsed.password)).toBe(password);
    expect(unescape(parsed.password)).toBe(password);
    expect(decodeURIComponent(parsed.username)).toBe('app');
    expect(`${parsed.host}${parsed.pathname}${parsed.search}`).toBe('mq:5671/vh?heartbeat=30');
  });

  it('encodes a user name the same way, and lets the secret name the user', () => {
    // Act
    const url = withCredentials('redis://default@cache:6379/0', {
      username: 'a@b:c',
      password: 'p',
    });

    // Assess
    expect(url).toBe('redis://a%40b%3Ac:p@cache:6379/0');
  });

  it('keeps the URL user name when the secret names none (a Redis AUTH token)', () => {
    // Act
    const url = withCredentials('redis://worker@cache:6379/2', { password: 'p@ss' });

    // Assess
    expect(url).toBe('redis://worker:p%40ss@cache:6379/2');
  });
});

describe('amqpCredentialIssues', () => {
  it.each([
    ['a user in the secret', 'amqps://mq/', { username: 'app', password: 'p' }, []],
    ['a user in the url', 'amqps://app@mq/', { password: 'p' }, []],
    ['no user anywhere', 'amqps://mq/', { password: 'p' }, ['username']],
    [
      'a password beyond ASCII',
      'amqps://mq/',
      { username: 'app', password: 'pässword' },
      ['password'],
    ],
  ])('finds %s', (_, url, credentials, paths) => {
    // Act
    const issues = amqpCredentialIssues(url, credentials);

    // Assess
    expect(issues.map((issue) => issue.path)).toEqual(paths);
  });
});
