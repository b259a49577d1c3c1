/**
 * Celery's remote-control mailbox on Redis, as kombu's Redis transport carries it: requests are
 * published on the fanout exchange `celery.pidbox`, i.e. `PUBLISH` on
 * `<global_keyprefix>/<db>.celery.pidbox` (kombu `_put_fanout`, no routing key); a reply goes
 * to the direct exchange `reply.celery.pidbox`, i.e. `LPUSH` to every queue its
 * `_kombu.binding.reply.celery.pidbox` set routes the client's routing key to (the client's
 * `<oid>.reply.celery.pidbox`, which it `BRPOP`s).
 */
import type { RedisBrokerConfig } from '../../config/broker-config.js';
import { brokerUrlOf } from '../../config/broker-secret.js';
import type { JsonValue } from '../../core/json.js';
import { encodeRedisEnvelopeFromRaw, KOMBU_SEPARATOR } from '../../core/redis-codec.js';
import {
  CONTROL_NAMESPACE,
  type ControlMailbox,
  type ControlReplyTo,
  type ControlRequest,
  parseControlRequest,
} from '../../core/remote-control.js';
import { loadRedisClient } from './redis-client.js';
import { connectRedis, redisFailure, type ScriptedRedis } from './redis-connection.js';
import { fanoutChannel } from './redis-events.js';

/** A worker's pidbox on Redis: a subscriber connection and one for replies. */
export class RedisControlMailbox implements ControlMailbox {
  readonly #config: RedisBrokerConfig;
  #clients: ScriptedRedis[] = [];
  #replies: ScriptedRedis | undefined;

  constructor(config: RedisBrokerConfig) {
    this.#config = config;
  }

  async listen(hostname: string, onRequest: (request: ControlRequest) => void): Promise<void> {
    const subscriber = await this.#connect(`${hostname} pidbox`);
    const channel = fanoutChannel(this.#config, `${CONTROL_NAMESPACE}.pidbox`);
    subscriber.on('message', (_channel: string, text: string) => {
      const request = parseControlRequest(decodeEnvelopeBody(text));
      if (request) onRequest(request);
    });
    try {
      await subscriber.subscribe(channel);
    } catch (error) {
      throw redisFailure(this.#config.url, `subscribe to ${channel}`, error);
    }
  }

  async reply(to: ControlReplyTo, ticket: string | null, body: JsonValue): Promise<void> {
    this.#replies ??= await this.#connect('pidbox replies');
    const redis = this.#replies;
    const prefix = this.#config.keyPrefix;
    try {
      const members = await redis.smembers(`${prefix}_kombu.binding.${to.exchange}`);
      const queues = members
        .map((member) => member.split(KOMBU_SEPARATOR))
        .filter(([routingKey, , queue]) => routingKey === to.routingKey && queue)
        .map(([, , queue]) => queue as string);
      const envelope = encodeRedisEnvelopeFromRaw({
        headers: { ticket, clock: 0 },
        body: JSON.stringify(body),
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        priority: 0,
        replyTo: null,
        exchange: to.exchange,
        routingKey: to.routingKey,
        redelivered: false,
      });
      // No queue bound: the client gave up waiting (kombu drops such a reply too).
      for (const queue of queues) await redis.lpush(`${prefix}${queue}`, envelope);
    } catch (error) {
      throw redisFailure(this.#config.url, `reply to ${to.routingKey}`, error);
    }
  }

  async close(): Promise<void> {
    const clients = this.#clients.splice(0);
    this.#replies = undefined;
    await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
  }

  async #connect(name: string): Promise<ScriptedRedis> {
    const url = await brokerUrlOf(this.#config);
    await loadRedisClient();
    const { client } = connectRedis({
      url,
      connectTimeoutMs: this.#config.connectTimeoutMs,
      connectionName: `serverless-celery:${name}`,
      ...(this.#config.tls ? { tls: this.#config.tls } : {}),
    });
    this.#clients.push(client);
    return client;
  }
}

/** The request in a kombu envelope: its body, base64 or plain per `body_encoding`, parsed. */
function decodeEnvelopeBody(text: string): unknown {
  try {
    const envelope = JSON.parse(text) as {
      body?: unknown;
      properties?: { body_encoding?: unknown };
    };
    if (typeof envelope.body !== 'string') return undefined;
    const base64 = envelope.properties?.body_encoding === 'base64';
    return JSON.parse(
      base64 ? Buffer.from(envelope.body, 'base64').toString('utf8') : envelope.body,
    );
  } catch {
    // Not a kombu message: nothing to answer.
    return undefined;
  }
}
