import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  BrokerSecret,
  brokerSecretArnOf,
  brokerUrlOf,
  connectWithSecret,
  SECRET_REFRESH_INTERVAL_MS,
} from '../../../src/config/broker-secret.js';
import { InvalidConfigError } from '../../../src/core/errors.js';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:broker-AbCdEf';

/**
 * A secret store that records every read: `value` is what it holds now (set it to rotate), and
 * a read resolves when the test says so, or at once.
 */
function fakeSecretStore(initial: string) {
  const store = {
    value: initial,
    reads: [] as { forceFetch: boolean }[],
    /** Reads that wait for {@link release} instead of resolving at once. */
    hold: false,
    waiting: [] as (() => void)[],
    cached: undefined as string | undefined,
    fetch: async (_: string, options: { readonly forceFetch: boolean }): Promise<string> => {
      store.reads.push({ forceFetch: options.forceFetch });
      if (store.hold) await new Promise<void>((resolve) => store.waiting.push(resolve));
      // Powertools' cache: a plain read answers what the last read fetched.
      if (options.forceFetch || store.cached === undefined) store.cached = store.value;
      return store.cached;
    },
    release() {
      for (const resolve of store.waiting.splice(0)) resolve();
    },
  };
  return store;
}

function manualClock() {
  const clock = { ms: 0, now: () => clock.ms };
  return clock;
}

/** An error as the broker's client raises it for refused credentials. */
class RefusedError extends Error {}

describe('BrokerSecret', () => {
  it('makes one read for the calls of a cold start that come while it is under way', async () => {
    // Prepare
    const store = fakeSecretStore('{"username":"app","password":"pw"}');
    store.hold = true;
    const secret = new BrokerSecret(ARN, { fetch: store.fetch });

    // Act
    const both = Promise.all([secret.credentials(), secret.credentials()]);
    store.release();
    const [first, second] = await both;

    // Assess
    expect(store.reads).toEqual([{ forceFetch: false }]);
    expect(first).toEqual({ username: 'app', password: 'pw' });
    expect(second).toBe(first);
  });

  it('reads past the cache on a refresh, and then answers the new credentials', async () => {
    // Prepare
    const store = fakeSecretStore('{"password":"old"}');
    const secret = new BrokerSecret(ARN, { fetch: store.fetch, now: manualClock().now });
    await secret.credentials();
    store.value = '{"password":"new"}';

    // Act
    const refreshed = await secret.refresh();
    const later = await secret.credentials();

    // Assess
    expect(refreshed).toEqual({ password: 'new' });
    expect(later).toEqual({ password: 'new' });
    expect(store.reads.map((read) => read.forceFetch)).toEqual([false, true, false]);
  });

  it('refreshes at most once per interval, however often the broker refuses', async () => {
    // Prepare
    const store = fakeSecretStore('{"password":"pw"}');
    const clock = manualClock();
    const secret = new BrokerSecret(ARN, { fetch: store.fetch, now: clock.now });

    // Act
    await secret.refresh();
    clock.ms += SECRET_REFRESH_INTERVAL_MS - 1;
    await secret.refresh();
    await secret.refresh();
    clock.ms += 1;
    await secret.refresh();

    // Assess
    expect(store.reads.map((read) => read.forceFetch)).toEqual([true, false, false, true]);
  });

  it('reads again after a failed read instead of keeping the failure', async () => {
    // Prepare
    let calls = 0;
    const secret = new BrokerSecret(ARN, {
      fetch: async () => {
        calls++;
        if (calls === 1) throw new Error('throttled');
        return 'token';
      },
    });

    // Act
    const first = await secret.credentials().catch((error: Error) => error.message);
    const second = await secret.credentials();

    // Assess
    expect(first).toBe('throttled');
    expect(second).toEqual({ password: 'token' });
  });
});

describe('brokerUrlOf', () => {
  it('answers the URL itself when there is no secret, reading nothing', async () => {
    // Act
    const url = await brokerUrlOf({ kind: 'redis', url: 'redis://:pw@cache:6379/0' }, false, () => {
      throw new Error('no secret should be read');
    });

    // Assess
    expect(url).toBe('redis://:pw@cache:6379/0');
  });

  it('refuses a RabbitMQ secret without a user name, naming the field and not the password', async () => {
    // Prepare
    const secret = new BrokerSecret(ARN, { fetch: async () => '{"password":"Sup3r-s3cret"}' });

    // Act
    const error = await brokerUrlOf(
      { kind: 'rabbitmq', url: 'amqps://mq:5671/', secretArn: ARN },
      false,
      () => secret,
    ).catch((thrown: unknown) => thrown);

    // Assess
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as InvalidConfigError).issues.map((issue) => issue.path)).toEqual(['username']);
    expect(inspect(error, { depth: 10 })).not.toContain('Sup3r-s3cret');
  });
});

describe('connectWithSecret', () => {
  const endpoint = { kind: 'rabbitmq', url: 'amqps://mq:5671/vh', secretArn: ARN } as const;
  const isAuthFailure = (error: unknown) => error instanceof RefusedError;

  /** A broker that accepts one password, recording the URLs it was asked to connect with. */
  function fakeBroker(password: string) {
    const broker = {
      password,
      urls: [] as string[],
      connect: async (url: string) => {
        broker.urls.push(url);
        if (decodeURIComponent(new URL(url).password) !== broker.password) {
          throw new RefusedError('Handshake terminated by server: 403');
        }
        return 'connection';
      },
    };
    return broker;
  }

  it('connects with the URL as it is when there is no secret', async () => {
    // Prepare
    const broker = fakeBroker('guest');

    // Act
    const connection = await connectWithSecret(
      { kind: 'rabbitmq', url: 'amqp://guest:guest@mq/' },
      broker.connect,
      { isAuthFailure, secretOf: () => expect.unreachable('no secret is read') },
    );

    // Assess
    expect(connection).toBe('connection');
    expect(broker.urls).toEqual(['amqp://guest:guest@mq/']);
  });

  it('heals a rotated password: refused, read anew, connected with the new one', async () => {
    // Prepare
    const store = fakeSecretStore('{"username":"app","password":"old@pw"}');
    const secret = new BrokerSecret(ARN, { fetch: store.fetch, now: manualClock().now });
    const broker = fakeBroker('old@pw');
    await connectWithSecret(endpoint, broker.connect, { isAuthFailure, secretOf: () => secret });
    store.value = '{"username":"app","password":"new/pw"}';
    broker.password = 'new/pw';

    // Act
    const connection = await connectWithSecret(endpoint, broker.connect, {
      isAuthFailure,
      secretOf: () => secret,
    });

    // Assess
    expect(connection).toBe('connection');
    expect(broker.urls).toEqual([
      'amqps://app:old%40pw@mq:5671/vh',
      'amqps://app:old%40pw@mq:5671/vh',
      'amqps://app:new%2Fpw@mq:5671/vh',
    ]);
    expect(store.reads.map((read) => read.forceFetch)).toEqual([false, false, true]);
  });

  it('gives the refusal back when the secret still holds the refused credentials', async () => {
    // Prepare
    const store = fakeSecretStore('{"username":"app","password":"stale"}');
    const secret = new BrokerSecret(ARN, { fetch: store.fetch });
    const broker = fakeBroker('rotated');

    // Act
    const error = await connectWithSecret(endpoint, broker.connect, {
      isAuthFailure,
      secretOf: () => secret,
    }).catch((thrown: unknown) => thrown);

    // Assess
    expect(error).toBeInstanceOf(RefusedError);
    expect(broker.urls).toHaveLength(1);
  });

  it('reads nothing anew for a failure other than refused credentials', async () => {
    // Prepare
    const store = fakeSecretStore('{"username":"app","password":"pw"}');
    const secret = new BrokerSecret(ARN, { fetch: store.fetch });
    const down = new Error('connect ECONNREFUSED 127.0.0.1:5671');

    // Act
    const error = await connectWithSecret(
      endpoint,
      async () => {
        throw down;
      },
      { isAuthFailure, secretOf: () => secret },
    ).catch((thrown: unknown) => thrown);

    // Assess
    expect(error).toBe(down);
    expect(store.reads).toEqual([{ forceFetch: false }]);
  });
});

describe('brokerSecretArnOf', () => {
  const env = { BROKER_URL: 'amqps://mq:5671/', BROKER_SECRET_ARN: ARN };

  it.each([
    ['the broker URL', 'amqps://mq:5671/', env, ARN],
    ['another URL (a lock or store elsewhere)', 'redis://locks:6379/0', env, undefined],
    [
      'the broker URL without a secret',
      'amqps://mq:5671/',
      { BROKER_URL: 'amqps://mq:5671/' },
      undefined,
    ],
    [
      'an empty BROKER_SECRET_ARN',
      'amqps://mq:5671/',
      { ...env, BROKER_SECRET_ARN: '' },
      undefined,
    ],
  ])('gives %s the broker secret only when it is the broker', (_, url, vars, expected) => {
    expect(brokerSecretArnOf(url, vars)).toBe(expected);
  });
});
