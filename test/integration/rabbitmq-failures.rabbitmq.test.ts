/**
 * How RabbitMQ's refusals reach a caller, on the real broker: each explained by its reply code
 * (never by digits in a name), with the server's own words kept, and never the password. The
 * vhost and queue names hold the digits of other reply codes on purpose.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { inspect, promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitMqBroker } from '../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import { BrokerError } from '../../src/core/errors.js';
import { defineTask } from '../../src/core/task.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';

const run = promisify(execFile);
const doWork = defineTask({ name: 'sentry.tasks.do_work' }, () => null);

let vhost: TestVhost;
/** A user with read and write but no configure permission on the vhost: it cannot declare. */
const user = { name: `sc-test-403-${randomUUID().slice(0, 8)}`, password: `pw-${randomUUID()}` };
const brokers: RabbitMqBroker[] = [];

beforeAll(async () => {
  vhost = await createTestVhost('403-404-406-530');
  await run('rabbitmqctl', ['add_user', '-q', user.name, user.password]);
  await run('rabbitmqctl', [
    'set_permissions',
    '-q',
    '-p',
    vhost.name,
    user.name,
    '^$',
    '.*',
    '.*',
  ]);
});

afterAll(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
  await run('rabbitmqctl', ['delete_user', '-q', user.name]);
  await vhost.remove();
});

function makeBroker(url = vhost.url): RabbitMqBroker {
  const config = parseBrokerConfig({ kind: 'rabbitmq', url });
  if (config.kind !== 'rabbitmq') throw new Error('unreachable');
  const broker = new RabbitMqBroker({ config, queues: [], logger: { warn: () => undefined } });
  brokers.push(broker);
  return broker;
}

function urlOf(name: string, password: string, vhostName: string, port = 5672): string {
  return `amqp://${name}:${password}@127.0.0.1:${port}/${encodeURIComponent(vhostName)}`;
}

async function failureOf(work: Promise<unknown>): Promise<BrokerError> {
  const failure = await work.then(
    () => new Error('expected a refusal'),
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(BrokerError);
  return failure as BrokerError;
}

describe('stats of what nobody declared', () => {
  it('reports 0 for a queue named with 403 in a vhost named with 403 (a 404 is not a refusal)', async () => {
    const stats = await makeBroker().stats('orders-403');

    expect(stats).toEqual({
      queue: 'orders-403',
      ready: 0,
      unacked: 0,
      delayed: 0,
      deadLettered: 0,
    });
  });
});

describe('refusals', () => {
  it('tells a missing permission from a wrong password, with the server’s words', async () => {
    const url = urlOf(user.name, user.password, vhost.name);

    const failure = await failureOf(
      makeBroker(url).publish([doWork.createMessage({ queue: 'orders-404' })]),
    );

    expect(failure.message).toMatch(/access refused \(the user lacks a permission on this vhost\)/);
    expect(failure.message).toContain(
      // The first thing a publisher declares is kombu's delay topology.
      `server: 403 ACCESS_REFUSED - access to exchange 'celery_delayed_27' in vhost '${vhost.name}' refused for user '${user.name}'`,
    );
    expect(inspect(failure, { depth: 10 })).not.toContain(user.password);
  });

  const wrong = `pw-${randomUUID()}`;
  it.each([
    [
      'the password is wrong',
      'guest',
      wrong,
      '',
      5672,
      /access refused \(wrong user name or password\) \(server: 403 ACCESS_REFUSED - Login was refused/,
    ],
    [
      'the vhost does not exist',
      'guest',
      'guest',
      'sc-missing-403',
      5672,
      /vhost does not exist or the user has no access to it/,
    ],
    [
      'the user has no permission on the vhost',
      'user',
      'user',
      '/',
      5672,
      /vhost does not exist or the user has no access to it/,
    ],
    ['nothing listens on the port', 'guest', wrong, '', 1, /connection refused/],
  ] as const)(
    'names host and vhost but never the password when %s',
    async (_, login, password, vhostName, port, explained) => {
      const name = vhostName || vhost.name;
      const secret = password === 'user' ? user.password : password;
      const url = urlOf(login === 'user' ? user.name : login, secret, name, port);

      const failure = await failureOf(
        makeBroker(url).publish([doWork.createMessage({ queue: 'orders-530' })]),
      );

      expect(failure.message).toContain(`RabbitMQ at 127.0.0.1:${port} vhost "${name}"`);
      expect(failure.message).toMatch(explained);
      if (secret !== 'guest') expect(inspect(failure, { depth: 10 })).not.toContain(secret);
    },
  );
});
