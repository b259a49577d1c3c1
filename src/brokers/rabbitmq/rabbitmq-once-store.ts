/**
 * {@link OnceStore} on RabbitMQ, so that a RabbitMQ deployment needs no Redis for its cron tick
 * locks. A claim is a durable queue of its own holding at most one message
 * (`x-max-length: 1`, `x-overflow: reject-publish`): the first confirmed publish into it is
 * acked, every later one nacked by the broker itself, which makes the publish an atomic
 * set-if-absent. `x-expires` deletes the queue once nobody has declared it for the claim's
 * time to live, as `EX` expires a Redis key.
 *
 * Each call opens a connection of its own and closes it: claims are rare (one per tick), and a
 * Lambda container frozen between ticks would otherwise wake up holding a dead socket.
 */
import type { Options } from 'amqplib';
import { brokerSecretArnOf, connectWithSecret } from '../../config/broker-secret.js';
import type { OnceStore } from '../../core/once-store.js';
import { type AmqpConnect, amqplibConnect } from './amqp-connect.js';
import { AMQP_REPLY, hasAmqpReply, isAmqpAuthFailure } from './amqp-failure.js';

/** Options of {@link rabbitMqOnceStore}. */
export interface RabbitMqOnceStoreOptions {
  /** Connection timeout, ms. @defaultValue 10 000 */
  readonly connectTimeoutMs?: number;
  /** Opens the connection (tests wrap amqplib's). @defaultValue amqplib's `connect` */
  readonly connect?: AmqpConnect;
  /**
   * Secrets Manager secret holding the credentials, `url` then holding none (see
   * `broker-secret.ts`); read anew when the broker refuses them.
   * @defaultValue `BROKER_SECRET_ARN` when `url` is `BROKER_URL` (the broker's own), else none
   */
  readonly secretArn?: string | undefined;
}

/** The one message a claim queue holds: its content says nothing, its presence is the claim. */
const CLAIM = Buffer.from('1');

/**
 * A RabbitMQ-backed {@link OnceStore}: one queue per claimed key, named by the key.
 *
 * A key is expected to be claimed with one TTL (a cron tick's key always is: its interval). A
 * claim of a key that exists with another TTL is refused by the broker (406) and answers
 * `false`, as any claim of an existing key does. Unlike Redis `EX`, the TTL counts from the
 * key's last use: a later claim of a held key, or `exists`, declares its queue again and so
 * starts the TTL over (harmless for tick keys, which no trigger asks for after its tick).
 * `rabbitmqctl list_queues` does not count as use.
 *
 * @param url - the broker's AMQP URL (`amqp://` or `amqps://`)
 * @example
 * createCronHandler(runtime, 'ingest.cleanup', { lock: rabbitMqOnceStore(process.env.BROKER_URL) })
 */
export function rabbitMqOnceStore(
  url: string,
  options: RabbitMqOnceStoreOptions = {},
): OnceStore & { close(): Promise<void> } {
  const open = options.connect ?? amqplibConnect;
  const socketOptions = { noDelay: true, timeout: options.connectTimeoutMs ?? 10_000 };
  const endpoint = {
    kind: 'rabbitmq',
    url,
    secretArn: 'secretArn' in options ? options.secretArn : brokerSecretArnOf(url),
  } as const;
  const withConnection = async <T>(
    work: (connection: Awaited<ReturnType<AmqpConnect>>) => Promise<T>,
  ): Promise<T> => {
    const connection = await connectWithSecret(endpoint, (at) => open(at, socketOptions), {
      isAuthFailure: isAmqpAuthFailure,
    });
    // An unheard 'error' event would be thrown; the call in flight rejects with the same error,
    // and that is where it is handled.
    connection.on('error', () => {});
    try {
      return await work(connection);
    } finally {
      await connection.close().catch(() => {
        // Closed by the broker already: nothing left to release.
      });
    }
  };
  return {
    claim: (key, ttlSeconds) =>
      withConnection(async (connection) => {
        const channel = quiet(await connection.createConfirmChannel());
        const queue: Options.AssertQueue = {
          durable: true,
          arguments: {
            'x-expires': Math.max(1, Math.ceil(ttlSeconds)) * 1000,
            'x-max-length': 1,
            'x-overflow': 'reject-publish',
          },
        };
        try {
          await channel.assertQueue(key, queue);
        } catch (error) {
          // Declared again with other arguments (another TTL): held by another claim.
          if (hasAmqpReply(error, AMQP_REPLY.PRECONDITION_FAILED)) return false;
          throw error;
        }
        return new Promise<boolean>((resolve, reject) => {
          channel.sendToQueue(key, CLAIM, { persistent: true }, (error: unknown) => {
            if (!error) resolve(true);
            // amqplib's error for a nack, the broker's answer when the queue is full (claimed);
            // a channel that closes before confirming rejects with another.
            else if (error instanceof Error && error.message === 'message nacked') resolve(false);
            else reject(error);
          });
        });
      }),
    exists: (key) =>
      withConnection(async (connection) => {
        const channel = quiet(await connection.createChannel());
        try {
          return (await channel.checkQueue(key)).messageCount > 0;
        } catch (error) {
          if (hasAmqpReply(error, AMQP_REPLY.NOT_FOUND)) return false;
          throw error;
        }
      }),
    release: (key) =>
      withConnection(async (connection) => {
        const channel = quiet(await connection.createChannel());
        // Deleting a queue that is gone already succeeds: a release after expiry is a no-op.
        await channel.deleteQueue(key);
      }),
    // Nothing is held between calls.
    close: async () => undefined,
  };
}

/**
 * A 404 or 406 closes the channel with an 'error' event as well as rejecting the call: the
 * rejection is what is handled, the event only must not go unheard (it would be thrown).
 */
function quiet<T extends { on(event: 'error', listener: () => void): unknown }>(channel: T): T {
  channel.on('error', () => {});
  return channel;
}
