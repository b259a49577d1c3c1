/**
 * The Amazon MQ event source, played locally for `npm start` on RabbitMQ (serverless-offline
 * ignores `rabbitmq` events): consume each queue with manual acks, frame batches as the
 * `aws:rmq` event Lambda sends (base64 `data`, string headers as `{ bytes: [...] }`,
 * `"<queue>::<vhost>"` keys), invoke the `dispatcher` function through serverless-offline's
 * Lambda endpoint, and acknowledge a batch only once the dispatcher returned success.
 *
 * Like the real event source for RabbitMQ: one batch in flight per queue (its concurrency is 1),
 * up to `batchSize` messages or whatever arrived within the batching window, and a batch whose
 * invoke failed goes back to the queue to be delivered again.
 */
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { type ConsumeMessage, connect } from 'amqplib';
import { type RmqEvent, toAmqpDelivery } from '../brokers/rabbitmq/amazon-mq-event.js';
import { RabbitMqBroker } from '../brokers/rabbitmq/rabbitmq-broker.js';
import {
  declareDelayTopology,
  declareWorkQueue,
  type TopologyChannel,
} from '../brokers/rabbitmq/topology.js';
import { parseBrokerConfig } from '../config/broker-config.js';
import { decodeAmqpMessage } from '../core/amqp-codec.js';
import type { Registry } from '../core/registry.js';
import type { LambdaInvoker } from '../lambda/lambda-executor.js';
import { toRmqEvent, vhostOf } from './local-amazon-mq-event.js';
import { identify, type OutcomeLine } from './local-report.js';

/** The slice of an amqplib channel the feeder uses. */
export interface FeederChannel extends TopologyChannel {
  prefetch(count: number): Promise<unknown>;
  consume(
    queue: string,
    onMessage: (message: ConsumeMessage | null) => void,
    options: { noAck: boolean },
  ): Promise<{ consumerTag: string }>;
  cancel(consumerTag: string): Promise<unknown>;
  ack(message: ConsumeMessage): void;
  nack(message: ConsumeMessage, allUpTo?: boolean, requeue?: boolean): void;
  close(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** The slice of an amqplib connection the feeder uses. */
export interface FeederConnection {
  createChannel(): Promise<FeederChannel>;
  close(): Promise<void>;
  on(event: 'close' | 'error', listener: (error?: Error) => void): unknown;
}

/** Options of {@link runAmazonMqFeeder}. */
export interface AmazonMqFeederOptions {
  /** `amqp://user:password@host:port/vhost`. */
  readonly url: string;
  readonly registry: Registry;
  /** A client for serverless-offline's Lambda endpoint. */
  readonly client: LambdaInvoker;
  /** The dispatcher's function name (`<service>-<stage>-dispatcher`). */
  readonly functionName: string;
  /** Stops taking messages; the batch in flight is settled, held ones go back to the queue. */
  readonly signal: AbortSignal;
  /** Called once per batch handed to the dispatcher. */
  readonly onBatch: (batch: FeederBatch) => void;
  /** Where connection trouble is reported. */
  readonly warn: (message: string) => void;
  /** Queues to feed. @defaultValue every declared queue */
  readonly queues?: readonly string[];
  /** Most messages per event (serverless.yml's `rabbitmqBatchSize`). @defaultValue 100 */
  readonly batchSize?: number;
  /**
   * How long to gather a batch after its first message, ms (serverless.yml's
   * `rabbitmqBatchWindow`). @defaultValue 1000
   */
  readonly batchWindowMs?: number;
  /** Opens a connection, for tests. @defaultValue amqplib's `connect` */
  readonly connect?: (url: string) => Promise<FeederConnection>;
}

/** One batch and what the dispatcher made of it. */
export interface FeederBatch {
  readonly queue: string;
  readonly event: RmqEvent;
  /** The dispatcher's round trip. */
  readonly durationMs: number;
  /** Its answer (counts per outcome kind), or why the batch went back to the queue. */
  readonly result:
    | { readonly ok: true; readonly counts: Readonly<Record<string, number>> }
    | { readonly ok: false; readonly error: string };
}

/**
 * Feeds the queues until `signal` aborts. A lost connection is reopened with a backoff; RabbitMQ
 * itself returns what the lost connection held.
 */
export async function runAmazonMqFeeder(options: AmazonMqFeederOptions): Promise<void> {
  const config = parseBrokerConfig(options.url);
  if (config.kind !== 'rabbitmq') throw new Error('the Amazon MQ feeder needs an amqp:// URL');
  // Only for the declarations: the queue and delay topology exactly as the broker declares them.
  const declarations = new RabbitMqBroker({ config, queues: options.registry.queues });
  const queues = options.queues ?? options.registry.queues.map((queue) => queue.name);
  const vhost = vhostOf(config.url);
  const open =
    options.connect ?? ((url: string) => connect(url, { timeout: config.connectTimeoutMs }));
  let failures = 0;
  while (!options.signal.aborted) {
    let connection: FeederConnection | undefined;
    try {
      connection = await open(config.url);
      const lost = new Promise<Error>((resolve) => {
        connection?.on('close', (error?: Error) =>
          resolve(error ?? new Error('connection closed')),
        );
        connection?.on('error', () => {
          // 'close' follows with the same error; it is reported there.
        });
      });
      const setup = await connection.createChannel();
      await declareDelayTopology(setup, declarations.delayTopology, config.delayQueueType);
      for (const queue of queues) {
        await declareWorkQueue(
          setup,
          declarations.declarationOf(queue),
          declarations.delayTopology,
        );
      }
      await setup.close();
      const feeders = await Promise.all(
        queues.map((queue) =>
          QueueFeeder.start(connection as FeederConnection, queue, vhost, options),
        ),
      );
      failures = 0;
      const stopped = await Promise.race([lost, aborted(options.signal)]);
      await Promise.all(feeders.map((feeder) => feeder.stop()));
      if (stopped instanceof Error) throw stopped;
      await connection.close();
    } catch (error) {
      if (options.signal.aborted) break;
      failures++;
      const delay = Math.min(5_000, 250 * 2 ** Math.min(failures, 5));
      options.warn(`amazon-mq feeder: ${(error as Error).message}; retrying in ${delay} ms`);
      await connection?.close().catch(() => {
        // Already closed: that is why we are here.
      });
      await sleep(delay, options.signal);
    }
  }
}

/** One queue's consumer: gathers batches and hands them to the dispatcher, one at a time. */
class QueueFeeder {
  readonly #channel: FeederChannel;
  readonly #queue: string;
  readonly #vhost: string;
  readonly #options: AmazonMqFeederOptions;
  readonly #buffer: ConsumeMessage[] = [];
  #wake: () => void = () => {};
  #consumerTag = '';
  #stopping = false;
  #loop: Promise<void> = Promise.resolve();
  #failures = 0;

  private constructor(
    channel: FeederChannel,
    queue: string,
    vhost: string,
    options: AmazonMqFeederOptions,
  ) {
    this.#channel = channel;
    this.#queue = queue;
    this.#vhost = vhost;
    this.#options = options;
  }

  static async start(
    connection: FeederConnection,
    queue: string,
    vhost: string,
    options: AmazonMqFeederOptions,
  ): Promise<QueueFeeder> {
    const channel = await connection.createChannel();
    channel.on('error', (error: Error) => options.warn(`channel of ${queue}: ${error.message}`));
    const feeder = new QueueFeeder(channel, queue, vhost, options);
    // The prefetch bounds what we hold to one batch, as the event source holds one.
    await channel.prefetch(options.batchSize ?? 100);
    const { consumerTag } = await channel.consume(
      queue,
      (message) => {
        if (message) feeder.#buffer.push(message);
        feeder.#wake();
      },
      { noAck: false },
    );
    feeder.#consumerTag = consumerTag;
    feeder.#loop = feeder.#run();
    return feeder;
  }

  /** Stops consuming, waits for the batch in flight, and returns the rest to the queue. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake();
    await this.#channel.cancel(this.#consumerTag).catch(() => {
      // The channel is gone: RabbitMQ has returned its messages already.
    });
    await this.#loop;
    this.#settle(this.#buffer.splice(0), 'requeue');
    await this.#channel.close().catch(() => {
      // Already closed with its connection.
    });
  }

  async #run(): Promise<void> {
    const batchSize = this.#options.batchSize ?? 100;
    const windowMs = this.#options.batchWindowMs ?? 1000;
    while (!this.#stopping) {
      if (this.#buffer.length === 0) {
        await this.#nap(60_000);
        continue;
      }
      const deadline = Date.now() + windowMs;
      while (!this.#stopping && this.#buffer.length < batchSize && Date.now() < deadline) {
        await this.#nap(deadline - Date.now());
      }
      if (this.#stopping) return;
      await this.#dispatch(this.#buffer.splice(0, batchSize));
    }
  }

  async #dispatch(batch: ConsumeMessage[]): Promise<void> {
    const event = toRmqEvent(this.#queue, this.#vhost, batch);
    const started = performance.now();
    let result: FeederBatch['result'];
    try {
      result = { ok: true, counts: await invokeDispatcher(this.#options, event) };
    } catch (error) {
      result = { ok: false, error: (error as Error).message };
    }
    this.#options.onBatch({
      queue: this.#queue,
      event,
      durationMs: performance.now() - started,
      result,
    });
    if (result.ok) {
      this.#failures = 0;
      this.#settle(batch, 'ack');
      return;
    }
    // Back to the queue, where we would take it at once: wait first, or a failing function
    // would be invoked in a tight loop.
    this.#failures++;
    await sleep(Math.min(30_000, 1_000 * 2 ** (this.#failures - 1)), this.#options.signal);
    this.#settle(batch, 'requeue');
  }

  #settle(messages: readonly ConsumeMessage[], how: 'ack' | 'requeue'): void {
    try {
      for (const message of messages) {
        if (how === 'ack') this.#channel.ack(message);
        else this.#channel.nack(message, false, true);
      }
    } catch (error) {
      // The channel closed: RabbitMQ redelivers what it held (at least once, as in AWS).
      this.#options.warn(`${this.#queue}: could not ${how}: ${(error as Error).message}`);
    }
  }

  /** Sleeps until a message arrives, `stop()` is called, or `ms` pass. */
  #nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** Invokes the dispatcher with `event` and returns its counts; throws unless it succeeded. */
async function invokeDispatcher(
  options: Pick<AmazonMqFeederOptions, 'client' | 'functionName'>,
  event: RmqEvent,
): Promise<Record<string, number>> {
  const response = await options.client.send(
    new InvokeCommand({
      FunctionName: options.functionName,
      InvocationType: 'RequestResponse',
      Payload: Buffer.from(JSON.stringify(event)),
    }),
  );
  const text = response.Payload ? Buffer.from(response.Payload).toString('utf8') : '';
  if (response.FunctionError) {
    throw new Error(
      `${options.functionName} failed (${response.FunctionError}): ${text.slice(0, 300)}`,
    );
  }
  return JSON.parse(text) as Record<string, number>;
}

/**
 * The live lines of a batch. The dispatcher answers counts per outcome kind, not one outcome per
 * message: a batch of one kind names it for every message; a mixed batch lists the counts.
 */
export function feederBatchLines(batch: FeederBatch): OutcomeLine[] {
  const { result } = batch;
  let outcome: string;
  if (!result.ok) outcome = `dispatcher failed, batch returned to the queue: ${result.error}`;
  else {
    const kinds = Object.entries(result.counts);
    outcome =
      kinds.length === 1
        ? (kinds[0] as [string, number])[0]
        : `in a batch of ${kinds.map(([kind, count]) => `${kind} ${count}`).join(', ')}`;
  }
  return Object.entries(batch.event.rmqMessagesByQueue).flatMap(([key, messages]) => {
    const queue = key.slice(0, key.lastIndexOf('::'));
    return messages.map((message) => ({
      ...identify(decodeAmqpMessage(toAmqpDelivery(queue, message))),
      outcome,
      durationMs: batch.durationMs,
    }));
  });
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
