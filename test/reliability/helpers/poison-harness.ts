/**
 * Pushing the poison table at a real broker the way foreign producers would (Redis: `LPUSH` of
 * raw envelopes, on a single node or a three-master cluster; RabbitMQ: amqplib `publish` of raw
 * bytes and headers), mixed with good messages, and reading back the dead-letter store entry of
 * each case.
 */
import { type Channel, connect } from 'amqplib';
import type { Cluster, Redis } from 'ioredis';
import type { Broker, BrokerLogger, DeadLetterEntry } from '../../../src/brokers/broker.js';
import { readDeadLetterHeaders } from '../../../src/brokers/rabbitmq/dead-letter-headers.js';
import { RabbitMqBroker } from '../../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { RedisBroker } from '../../../src/brokers/redis/redis-broker.js';
import { parseBrokerConfig } from '../../../src/config/broker-config.js';
import { createTestVhost } from '../../helpers/rabbitmq.js';
import { recordingLogger, redisBench, uniqueQueue } from '../../helpers/redis.js';
import { openClusterClient, startRedisCluster } from '../../helpers/redis-cluster.js';
import { AMQP_CASES, REDIS_CASES } from './poison-broker-cases.js';
import {
  type AmqpRaw,
  type CaseContext,
  type Expected,
  goodMessage,
  SECRET,
  SHARED_CASES,
  type WireMessage,
} from './poison-cases.js';

/** The brokers the poison stream runs on (`redis-cluster-3`: a three-master Redis Cluster). */
export const POISON_BROKER_KINDS = ['redis', 'redis-cluster-3', 'rabbitmq'] as const;

/** One of {@link POISON_BROKER_KINDS}. */
export type PoisonBrokerKind = (typeof POISON_BROKER_KINDS)[number];

/** One message of the stream, framed for its broker. */
export interface StreamItem {
  readonly name: string;
  /** `good` for the plain messages the bad ones are mixed into. */
  readonly expect: Expected | { readonly kind: 'good' };
  readonly ctx: CaseContext;
  /** The raw list element (Redis) or the amqplib publish arguments (RabbitMQ). */
  readonly frame: string | AmqpRaw;
  /** {@link SECRET} is somewhere in the message's arguments or bytes. */
  readonly carriesSecret: boolean;
}

/** A dead letter, and the case it came from (`null` when nothing marked it). */
export interface FoundDeadLetter {
  readonly entry: DeadLetterEntry;
  readonly marker: string | null;
}

/** A broker under test with its own namespace (Redis queue on db 3 or a cluster; AMQP vhost). */
export interface PoisonBench {
  readonly kind: PoisonBrokerKind;
  readonly queue: string;
  readonly broker: Broker;
  /** What the broker logged. */
  readonly brokerWarnings: readonly string[];
  /** Publishes the stream, in order, bypassing our encoder. */
  publish(items: readonly StreamItem[]): Promise<void>;
  /** Every entry of the queue's dead-letter store, with the marker of its case. */
  deadLetters(markers: readonly string[]): Promise<FoundDeadLetter[]>;
  /** Deletes what the bench created. */
  cleanup(): Promise<void>;
}

/** The Redis database of the poison file. */
export const POISON_DB = 3;

/** kombu's envelope around `message`, with the case marker as an extra envelope key. */
export function frameRedis(message: WireMessage, ctx: CaseContext): string {
  return JSON.stringify({
    body: Buffer.from(message.body).toString('base64'),
    ...present('content-encoding', message.contentEncoding, 'utf-8'),
    ...present('content-type', message.contentType, 'application/json'),
    ...(message.headers === undefined ? {} : { headers: message.headers }),
    properties: {
      correlation_id: ctx.id,
      delivery_mode: 2,
      delivery_info: { exchange: '', routing_key: ctx.queue },
      priority: 0,
      body_encoding: 'base64',
      delivery_tag: crypto.randomUUID(),
    },
    case: ctx.marker,
  });
}

/** amqplib's publish arguments for `message`, with the case marker as the correlation id. */
export function frameAmqp(message: WireMessage, ctx: CaseContext): AmqpRaw {
  const contentType = message.contentType === undefined ? 'application/json' : message.contentType;
  const encoding = message.contentEncoding === undefined ? 'utf-8' : message.contentEncoding;
  return {
    content: Buffer.from(message.body),
    options: {
      ...(contentType === null ? {} : { contentType }),
      ...(encoding === null ? {} : { contentEncoding: encoding }),
      ...(message.headers === undefined ? {} : { headers: message.headers }),
      correlationId: ctx.marker,
      deliveryMode: 2,
    },
  };
}

function present(key: string, value: string | null | undefined, fallback: string) {
  if (value === null) return {};
  return { [key]: value ?? fallback };
}

/** True when {@link SECRET} is in `frame`, its content, or its envelope's decoded body. */
function carriesSecret(frame: string | AmqpRaw): boolean {
  if (typeof frame !== 'string') return frame.content.includes(SECRET);
  if (frame.includes(SECRET)) return true;
  try {
    const { body } = JSON.parse(frame) as { body?: unknown };
    if (typeof body !== 'string') return false;
    return [Buffer.from(body, 'base64'), Buffer.from(body, 'hex')].some((bytes) =>
      bytes.toString('latin1').includes(SECRET),
    );
  } catch {
    // Not a JSON envelope: the raw text was all there was to search.
    return false;
  }
}

/**
 * The stream for `kind`: every shared case and every case of that broker, each followed by a
 * good message, then the remaining good messages, so that bad and good alternate on the wire.
 */
export function buildStream(
  kind: PoisonBrokerKind,
  queue: string,
  goodCount: number,
): StreamItem[] {
  let index = 0;
  const context = (): CaseContext => ({
    queue,
    id: crypto.randomUUID(),
    marker: `@case-${index++}@`,
  });
  const cases: StreamItem[] = SHARED_CASES.map((item) => {
    const ctx = context();
    const message = item.build(ctx);
    const frame = kind === 'rabbitmq' ? frameAmqp(message, ctx) : frameRedis(message, ctx);
    return {
      name: item.name,
      expect: item.expect,
      ctx,
      frame,
      carriesSecret: carriesSecret(frame),
    };
  });
  const own = kind === 'rabbitmq' ? AMQP_CASES : REDIS_CASES;
  for (const item of own as readonly {
    name: string;
    expect: Expected;
    build: (ctx: CaseContext) => string | AmqpRaw;
  }[]) {
    const ctx = context();
    const frame = item.build(ctx);
    const name = `${kind}: ${item.name}`;
    cases.push({ name, expect: item.expect, ctx, frame, carriesSecret: carriesSecret(frame) });
  }
  const goods: StreamItem[] = Array.from({ length: goodCount }, (_, n) => {
    const ctx = context();
    const message = goodMessage(ctx, n);
    return {
      name: `good #${n}`,
      expect: { kind: 'good' },
      ctx,
      frame: kind === 'rabbitmq' ? frameAmqp(message, ctx) : frameRedis(message, ctx),
      carriesSecret: false,
    };
  });
  const stream: StreamItem[] = [];
  for (let i = 0; i < Math.max(cases.length, goods.length); i++) {
    const bad = cases[i];
    const good = goods[i];
    if (bad) stream.push(bad);
    if (good) stream.push(good);
  }
  return stream;
}

/** A bench on `kind`. */
export function openPoisonBench(kind: PoisonBrokerKind): Promise<PoisonBench> {
  return kind === 'rabbitmq' ? rabbitPoisonBench() : redisPoisonBench(kind);
}

/**
 * A queue of its own on database {@link POISON_DB} of the shared Redis, or a three-master cluster
 * of its own (keys under `{celery}:`); `admin` pushes raw envelopes past the broker.
 */
async function redisStore(kind: 'redis' | 'redis-cluster-3', logger: BrokerLogger) {
  if (kind === 'redis') {
    const bench = redisBench(POISON_DB);
    const admin: Redis | Cluster = bench.admin;
    const cleanup = async () => {
      await bench.cleanup();
      await bench.close();
    };
    return { queue: bench.newQueue(), broker: bench.openBroker({}, { logger }), admin, cleanup };
  }
  const cluster = await startRedisCluster({ masters: 3 });
  const config = parseBrokerConfig({ kind: 'redis', url: cluster.url });
  if (config.kind !== 'redis') throw new Error(`not a Redis config: ${config.kind}`);
  const broker = new RedisBroker({ config, logger });
  const admin = openClusterClient(cluster);
  const cleanup = async () => {
    await broker.close();
    await admin.quit();
    await cluster.stop();
  };
  return { queue: uniqueQueue(), broker, admin, cleanup };
}

async function redisPoisonBench(kind: 'redis' | 'redis-cluster-3'): Promise<PoisonBench> {
  const logger = recordingLogger();
  const { queue, broker, admin, cleanup } = await redisStore(kind, logger);
  return {
    kind,
    queue,
    broker,
    brokerWarnings: logger.warnings,
    async publish(items) {
      // The queue's list as the broker names it: `{celery}:<queue>` on a cluster.
      const list = broker.keys.prefixed(queue);
      const pipeline = admin.pipeline();
      for (const item of items) pipeline.lpush(list, item.frame as string);
      await pipeline.exec();
    },
    async deadLetters(markers) {
      const entries = await broker.deadLetters(queue, 10_000);
      // Markers end with `@`, so `@case-1@` never matches inside `@case-12@`.
      return entries.map((entry) => ({
        entry,
        marker: markers.find((marker) => entry.raw.includes(marker)) ?? null,
      }));
    },
    cleanup,
  };
}

async function rabbitPoisonBench(): Promise<PoisonBench> {
  const vhost = await createTestVhost();
  const queue = `poison-${crypto.randomUUID()}`;
  const config = parseBrokerConfig({ kind: 'rabbitmq', url: vhost.url });
  if (config.kind !== 'rabbitmq') throw new Error(`not a RabbitMQ config: ${config.kind}`);
  const logger = recordingLogger();
  const broker = new RabbitMqBroker({ config, logger });
  const withChannel = async <T>(work: (channel: Channel) => Promise<T>): Promise<T> => {
    const connection = await connect(vhost.url);
    try {
      return await work(await connection.createConfirmChannel());
    } finally {
      await connection.close();
    }
  };
  return {
    kind: 'rabbitmq',
    queue,
    broker,
    brokerWarnings: logger.warnings,
    async publish(items) {
      await withChannel(async (channel) => {
        // Celery's declaration, which is also the broker's default: durable, no arguments.
        await channel.assertQueue(queue, { durable: true });
        const confirm = channel as Channel & { waitForConfirms(): Promise<void> };
        for (const item of items) {
          const { content, options } = item.frame as AmqpRaw;
          if (!channel.publish('', queue, content, options)) {
            await new Promise((resolve) => channel.once('drain', resolve));
          }
        }
        await confirm.waitForConfirms();
      });
    },
    async deadLetters() {
      const dlq = `${queue}.dlq`;
      return withChannel(async (channel) => {
        const found: FoundDeadLetter[] = [];
        for (;;) {
          const message = await channel.get(dlq, { noAck: true });
          if (!message) return found;
          const marker = message.properties.correlationId;
          found.push({
            entry: readDeadLetterHeaders(message.properties.headers ?? {}, queue, message.content),
            marker: typeof marker === 'string' ? marker : null,
          });
        }
      });
    },
    async cleanup() {
      await broker.close();
      await vhost.remove();
    },
  };
}
