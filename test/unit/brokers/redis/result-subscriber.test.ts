import { describe, expect, it } from 'vitest';
import {
  ResultSubscriber,
  type SubscriberConnection,
} from '../../../../src/brokers/redis/result-subscriber.js';
import { CeleryError } from '../../../../src/core/errors.js';
import { pendingMeta, type ResultMeta } from '../../../../src/core/result-backend.js';

/** A promise and its resolve, for a test that decides when things happen. */
function gate<T = void>() {
  let open: (value: T) => void = () => {};
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** A connection that records the commands it is sent; `deliver` plays a published message. */
function fakeConnection() {
  const sent: string[] = [];
  let onMessage: (channel: string, text: string) => void = () => {};
  const connection: SubscriberConnection = {
    on(event: string, listener: (...args: never[]) => void) {
      if (event === 'message') onMessage = listener as typeof onMessage;
      return connection;
    },
    async subscribe(channel) {
      sent.push(`SUBSCRIBE ${channel}`);
    },
    async unsubscribe(channel) {
      sent.push(`UNSUBSCRIBE ${channel}`);
    },
    disconnect() {
      sent.push('DISCONNECT');
    },
  };
  return {
    connection,
    sent,
    deliver: (channel: string, meta: ResultMeta) => onMessage(channel, JSON.stringify(meta)),
  };
}

const done = (id: string, result: number): ResultMeta => ({
  ...pendingMeta(id),
  status: 'SUCCESS',
  result,
});
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('ResultSubscriber', () => {
  it('opens one connection for every wait, on the first', async () => {
    // Prepare
    const fake = fakeConnection();
    let opened = 0;
    const subscriber = new ResultSubscriber(async () => {
      opened += 1;
      return fake.connection;
    });
    const pending = async () => pendingMeta('x');

    // Act
    const waits = ['a', 'b', 'c'].map((id) => subscriber.wait(id, `ch-${id}`, pending));
    await settle();
    for (const [index, id] of ['a', 'b', 'c'].entries()) fake.deliver(`ch-${id}`, done(id, index));

    // Assess
    await expect(Promise.all(waits)).resolves.toEqual([done('a', 0), done('b', 1), done('c', 2)]);
    expect(opened).toBe(1);
    expect(subscriber.channelCount).toBe(0);
  });

  it('sends SUBSCRIBE and UNSUBSCRIBE in the order asked, even before the connection opens', async () => {
    // Prepare
    const fake = fakeConnection();
    const connected = gate<SubscriberConnection>();
    const subscriber = new ResultSubscriber(() => connected.promise);
    const abort = new AbortController();
    const first = subscriber.wait('id', 'ch', async () => pendingMeta('id'), {
      signal: abort.signal,
    });
    abort.abort(new Error('gone'));
    await expect(first).rejects.toThrow('gone');

    // Act: a second waiter on the channel its predecessor just left.
    const second = subscriber.wait('id', 'ch', async () => pendingMeta('id'));
    connected.open(fake.connection);
    await settle();
    fake.deliver('ch', done('id', 9));

    // Assess
    expect(fake.sent).toEqual(['SUBSCRIBE ch', 'UNSUBSCRIBE ch', 'SUBSCRIBE ch']);
    await expect(second).resolves.toEqual(done('id', 9));
  });

  it('reads the stored meta only once the channel is subscribed', async () => {
    // Prepare
    const fake = fakeConnection();
    const subscribed = gate();
    const log: string[] = [];
    const subscriber = new ResultSubscriber(async () => ({
      ...fake.connection,
      on: fake.connection.on,
      subscribe: async (channel: string) => {
        log.push(`subscribe ${channel}`);
        await subscribed.promise;
        log.push('subscribed');
      },
    }));

    // Act
    const wait = subscriber.wait('id', 'ch', async () => {
      log.push('read');
      return done('id', 1);
    });
    await settle();
    const beforeReply = [...log];
    subscribed.open();

    // Assess
    await expect(wait).resolves.toEqual(done('id', 1));
    expect(beforeReply).toEqual(['subscribe ch']);
    expect(log).toEqual(['subscribe ch', 'subscribed', 'read']);
  });

  it('ignores states that are not final, and messages of other channels', async () => {
    // Prepare
    const fake = fakeConnection();
    const subscriber = new ResultSubscriber(async () => fake.connection);
    let woken = false;
    const wait = subscriber
      .wait('id', 'ch', async () => pendingMeta('id'))
      .then((meta) => {
        woken = true;
        return meta;
      });
    await settle();

    // Act
    fake.deliver('ch', { ...pendingMeta('id'), status: 'STARTED' });
    fake.deliver('other', done('other', 2));
    await settle();
    const early = woken;
    fake.deliver('ch', done('id', 3));

    // Assess
    expect(early).toBe(false);
    await expect(wait).resolves.toEqual(done('id', 3));
  });

  it('fails the waits in progress on close, disconnects, and reads nothing after', async () => {
    // Prepare
    const fake = fakeConnection();
    const subscribed = gate();
    let reads = 0;
    const subscriber = new ResultSubscriber(async () => ({
      ...fake.connection,
      on: fake.connection.on,
      subscribe: () => subscribed.promise,
    }));
    const failed = subscriber
      .wait('id', 'ch', async () => {
        reads += 1;
        return pendingMeta('id');
      })
      .catch((error: unknown) => error);

    // Act
    await settle();
    await subscriber.close();
    subscribed.open();
    await settle();

    // Assess
    expect(await failed).toBeInstanceOf(CeleryError);
    expect(fake.sent).toEqual(['DISCONNECT']);
    expect(reads).toBe(0);
    expect(subscriber.channelCount).toBe(0);
  });
});
