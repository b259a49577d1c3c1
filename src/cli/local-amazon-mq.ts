/**
 * The Amazon MQ event source, played locally for `dev` (and `npm start`) on RabbitMQ
 * (serverless-offline ignores `rabbitmq` events): consume each queue with manual acks, frame
 * batches as the `aws:rmq` event Lambda sends (base64 `data`, string headers as
 * `{ bytes: [...] }`, `"<queue>::<vhost>"` keys), hand them to the dispatcher, and acknowledge a
 * batch only once the dispatcher returned success.
 *
 * Like the real event source for RabbitMQ: one batch in flight per queue (its concurrency is 1),
 * up to `batchSize` messages or whatever arrived within the batching window, and a batch whose
 * dispatch failed goes back to the queue to be delivered again.
 *
 * The dispatcher is the deployed one (`createAmazonMqDispatcher`), run in this process as the
 * Redis path runs the poller's loop ({@link localDispatcher}): it invokes each task's function
 * through serverless-offline's Lambda endpoint, stores results in the functions' result
 * backend when they have one, and reports every settled message on its own, which a dispatcher
 * function answering counts per kind could not.
 */
import { randomUUID } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import type { Context } from 'aws-lambda';
import type { Broker } from '../brokers/broker.js';
import type { RmqEvent } from '../brokers/rabbitmq/amazon-mq-event.js';
import { amqplibConnect } from '../brokers/rabbitmq/amqp-connect.js';
import { isAmqpAuthFailure } from '../brokers/rabbitmq/amqp-failure.js';
import { RabbitMqBroker } from '../brokers/rabbitmq/rabbitmq-broker.js';
import {
  declareDelayTopology,
  declareWorkQueue,
  type TopologyChannel,
} from '../brokers/rabbitmq/topology.js';
import type { RedisResultBackend } from '../brokers/redis/redis-result-backend.js';
import { parseBrokerConfig } from '../config/broker-config.js';
import { brokerSecretArnOf, connectWithSecret } from '../config/broker-secret.js';
import type { Registry } from '../core/registry.js';
import { createAmazonMqDispatcher, type DispatcherResult } from '../lambda/amazon-mq-dispatcher.js';
import { deployedFunctionName } from '../lambda/function-names.js';
import { type LambdaInvoker, lambdaExecutor } from '../lambda/lambda-executor.js';
import type { WorkerEvent } from '../worker/dispatch.js';
import { toRmqEvent, vhostOf } from './local-amazon-mq-event.js';

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
  /**
   * Hands one event to the dispatcher ({@link localDispatcher}). Resolving acknowledges its
   * messages; throwing returns them to the queue, to be delivered again.
   */
  readonly dispatch: (event: RmqEvent) => Promise<unknown>;
  /** Stops taking messages; the batch in flight is settled, held ones go back to the queue. */
  readonly signal: AbortSignal;
  /** Where connection trouble and failed dispatches are reported. */
  readonly warn: (message: string) => void;
  /** Queues to feed. @defaultValue every declared queue */
  readonly queues?: readonly string[];
  /** Most messages per event (`custom.celery.broker.amazonMq.batchSize`). @defaultValue 100 */
  readonly batchSize?: number;
  /**
   * How long to gather a batch after its first message, ms (the event source's
   * `custom.celery.broker.amazonMq.maximumBatchingWindow`, in s). @defaultValue 1000
   */
  readonly batchWindowMs?: number;
  /** Opens a connection, for tests. @defaultValue amqplib's `connect` */
  readonly connect?: (url: string) => Promise<FeederConnection>;
}

/** Options of {@link localDispatcher}. */
export interface LocalDispatcherOptions {
  readonly registry: Registry;
  /** Where retries are re-published and dead letters stored. */
  readonly broker: Broker;
  /** A client for serverless-offline's Lambda endpoint. */
  readonly client: LambdaInvoker;
  /** `<service>-<stage>-`, as serverless-offline names the task functions. */
  readonly functionPrefix: string;
  /** Called once per settled message. */
  readonly onOutcome: (event: WorkerEvent) => void;
  /**
   * How long one event may take, ms, as the deployed `dispatcher` function's timeout: invokes
   * not started by then are put back, due at once. @defaultValue 90000
   */
  readonly timeoutMs?: number;
  /** Most messages per invoke. @defaultValue 10 */
  readonly invokeBatchSize?: number;
  /**
   * Where results are stored: the task functions' `RESULT_BACKEND`. The caller closes it.
   * @defaultValue none, nothing is stored
   */
  readonly resultBackend?: RedisResultBackend | null;
}

/**
 * The deployed dispatcher's handler, run in this process: each task's messages go to its
 * function through `client`, every message is settled from its own outcome and reported to
 * `onOutcome`.
 *
 * @returns a `dispatch` for {@link runAmazonMqFeeder}: the counts per outcome kind, as the
 *   function answers; throws when a settlement could not be stored
 */
export function localDispatcher(
  options: LocalDispatcherOptions,
): (event: RmqEvent) => Promise<DispatcherResult> {
  const { registry, broker } = options;
  const resultBackend = options.resultBackend ?? null;
  const handler = createAmazonMqDispatcher(
    { registry, broker: () => broker, resultBackend: () => resultBackend },
    {
      executor: lambdaExecutor({
        functionName: (task) => deployedFunctionName(registry, task, options.functionPrefix),
        client: options.client,
        batchSize: options.invokeBatchSize ?? 10,
      }),
      onOutcome: options.onOutcome,
    },
  );
  const functionName = `${options.functionPrefix}dispatcher`;
  return (event) => handler(event, lambdaContext(functionName, options.timeoutMs ?? 90_000));
}

/** The context Lambda gives one invoke: middy aborts the handler's signal near its deadline. */
function lambdaContext(functionName: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
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
    options.connect ??
    ((url: string) => amqplibConnect(url, { noDelay: true, timeout: config.connectTimeoutMs }));
  let failures = 0;
  while (!options.signal.aborted) {
    let connection: FeederConnection | undefined;
    try {
      // The event source logs in with the broker's secret when there is one; so does this.
      connection = await connectWithSecret(
        { kind: 'rabbitmq', url: config.url, secretArn: brokerSecretArnOf(options.url) },
        open,
        { isAuthFailure: isAmqpAuthFailure },
      );
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
    try {
      await this.#options.dispatch(event);
      this.#failures = 0;
      this.#settle(batch, 'ack');
      return;
    } catch (error) {
      this.#options.warn(
        `${this.#queue}: the dispatcher failed, ${batch.length} message(s) go back to the queue: ${(error as Error).message}`,
      );
    }
    // Back to the queue, where we would take it at once: wait first, or a failing dispatcher
    // would be handed the same batch in a tight loop.
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
