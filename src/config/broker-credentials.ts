/**
 * A broker secret's text read as credentials, and credentials put into a broker URL: the pure
 * half of broker secrets (broker-secret.ts fetches them). Nothing here quotes a secret's value
 * in an error.
 */
import { InvalidConfigError } from '../core/errors.js';
import { editRedisUrl } from './redis-url.js';

/** A broker user's name and password, as read from a secret. */
export interface BrokerCredentials {
  /** Absent for a Redis AUTH token: the URL's user name, else Redis' `default` user. */
  readonly username?: string;
  readonly password: string;
}

/**
 * The credentials a secret's text holds: a JSON object with a string `password` and an optional
 * string `username` (other fields, such as Amazon MQ's `engine` or `host`, are ignored), or, for
 * text that does not start with `{`, the text itself as a password (a Redis AUTH token stored as
 * plain text).
 *
 * @param secretId - named in errors, as their subject
 * @throws InvalidConfigError naming the field at fault, never quoting the secret
 * @example
 * parseBrokerSecret('{"username":"app","password":"pw"}', arn) // → { username: 'app', password: 'pw' }
 * parseBrokerSecret('token', arn) // → { password: 'token' }
 */
export function parseBrokerSecret(text: string, secretId: string): BrokerCredentials {
  const subject = `broker secret ${secretId}`;
  if (!text.trimStart().startsWith('{')) {
    if (text === '') throw new InvalidConfigError(subject, [{ path: '', message: 'is empty' }]);
    return { password: text };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text near the fault, which is the secret: its message is dropped.
    throw new InvalidConfigError(subject, [
      { path: '', message: 'starts with { but is not valid JSON' },
    ]);
  }
  const fields = parsed as Record<string, unknown>;
  const issues = [];
  if (typeof fields.password !== 'string' || fields.password === '') {
    issues.push({ path: 'password', message: 'must be a non-empty string' });
  }
  if (fields.username !== undefined && typeof fields.username !== 'string') {
    issues.push({ path: 'username', message: 'must be a string when given' });
  }
  if (issues.length > 0) throw new InvalidConfigError(subject, issues);
  return {
    password: fields.password as string,
    ...(fields.username ? { username: fields.username as string } : {}),
  };
}

/**
 * `url` with `credentials` as its user information, each percent-encoded, so that `@ : / ? # %`
 * in them reach ioredis and amqplib as written (both decode the URL's user information). The
 * secret's user name wins over the URL's; a secret without one keeps the URL's.
 *
 * @example
 * withCredentials('redis://cache:6379/0', { password: 'p@ss' }) // → 'redis://:p%40ss@cache:6379/0'
 */
export function withCredentials(url: string, credentials: BrokerCredentials): string {
  // A cluster URL's host list is no WHATWG URL: its single-node form is edited (redis-url.ts).
  return editRedisUrl(url, (single) => {
    const parsed = new URL(single);
    if (credentials.username !== undefined) {
      parsed.username = encodeURIComponent(credentials.username);
    }
    // The setter would encode `@ : /` itself but leave `%` alone, so a password holding `%41`
    // would reach the client as `A`: encodeURIComponent first, whose output the setter keeps.
    parsed.password = encodeURIComponent(credentials.password);
    return parsed.href;
  });
}

/**
 * Credentials a RabbitMQ URL cannot carry, as issues (none when it can): amqplib logs in as the
 * empty user name when neither the secret nor the URL names one (a misleading 403), and decodes
 * the URL's user information with `unescape`, which turns UTF-8 beyond ASCII into other
 * characters (again a 403 for a password that is right).
 */
export function amqpCredentialIssues(
  url: string,
  credentials: BrokerCredentials,
): { path: string; message: string }[] {
  const issues = [];
  if (!credentials.username && !new URL(url).username) {
    issues.push({
      path: 'username',
      message: 'is required for RabbitMQ (or name the user in the url)',
    });
  }
  for (const field of ['username', 'password'] as const) {
    if (/[^\x20-\x7e]/.test(credentials[field] ?? '')) {
      issues.push({
        path: field,
        message: 'holds characters other than printable ASCII, which amqplib cannot log in with',
      });
    }
  }
  return issues;
}
