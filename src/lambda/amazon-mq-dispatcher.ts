/**
 * The dispatcher for Amazon MQ for RabbitMQ's event source: the event brings a batch (one
 * environment per mapping, so the batch is the unit of parallelism: up to 10 000 messages), the
 * dispatcher splits each task's messages into invokes of `invokeBatchSize`, keeps up to
 * `maxInFlight` of them running, and settles every message from its own outcome as it comes: a
 * retry or a not-yet-due message is re-published through the delay levels, a dead one is stored
 * in its queue's dead-letter queue, an invoke failure is re-queued without spending a task retry
 * (up to the poison cap), a throttled invoke waits and is tried again.
 *
 * It returns success only when every message is done, parked or dead-lettered, and every
 * workflow continuation (callbacks, next chain step, errbacks) is published; the event source
 * then acknowledges the batch. If storing a settlement fails, it throws, and the event source
 * redelivers the batch (at-least-once; the ids stay the same, continuations' ids too).
 */
import middy from '@middy/core';
import type { Broker, Delivery, SettleItem } from '../brokers/broker.js';
import {
  decodeRmqEvent,
  type RmqEvent,
  toAmqpDelivery,
} from '../brokers/rabbitmq/amazon-mq-event.js';
import type { TaskMessage } from '../core/message.js';
import type { RawDelivery } from '../core/wire.js';
import { dispatchBatch, type WorkerEvent } from '../worker/dispatch.js';
import type { TaskExecutor } from '../worker/executor.js';
import { deployedFunctionName } from './function-names.js';
import { type LambdaExecutorOptions, lambdaExecutor } from './lambda-executor.js';
import { metricsInLambda, type TaskMetricsSink } from './metrics.js';
import { instrumentExecutor } from './metrics-executor.js';
import type { LambdaRuntime } from './runtime.js';

/** Options of {@link createAmazonMqDispatcher}. */
export interface AmazonMqDispatcherOptions {
  /** Runs the tasks. @defaultValue invoke each task's function */
  readonly executor?: TaskExecutor;
  /** Lambda client, for tests. */
  readonly client?: LambdaExecutorOptions['client'];
  /** Called once per settled message. */
  readonly onOutcome?: (event: WorkerEvent) => void;
  /** Invokes in flight at once. @defaultValue 100 */
  readonly maxInFlight?: number;
  /** Most messages per invoke (all of one task). @defaultValue 10 */
  readonly invokeBatchSize?: number;
  /**
   * Where the invoke metrics go, as CloudWatch EMF (`null`: nowhere).
   * @defaultValue Powertools Metrics in Lambda, none elsewhere
   */
  readonly metrics?: TaskMetricsSink | null;
}

/** What the dispatcher answers: counts per outcome kind. */
export type DispatcherResult = Record<string, number>;

/** Builds the handler of the `rabbitmq` event source function. */
export function createAmazonMqDispatcher(
  runtime: LambdaRuntime,
  options: AmazonMqDispatcherOptions = {},
) {
  const { registry } = runtime;
  const invoker =
    options.executor ??
    lambdaExecutor({
      functionName: (task) => deployedFunctionName(registry, task),
      batchSize: options.invokeBatchSize ?? 10,
      ...(options.client ? { client: options.client } : {}),
    });
  const metrics = options.metrics !== undefined ? options.metrics : metricsInLambda();
  const instrumented = metrics ? instrumentExecutor(invoker, metrics) : null;
  const executor = instrumented ?? invoker;
  const dispatch = async (
    event: RmqEvent,
    context: { functionName?: string } | undefined,
    { signal }: { signal: AbortSignal },
  ): Promise<DispatcherResult> => {
    metrics?.captureColdStartMetric?.(context?.functionName);
    const raws = new Map<Delivery, RawDelivery>();
    const deliveries = decodeRmqEvent(event).map((item) => {
      const delivery: Delivery = {
        queue: item.queue,
        result: item.result,
        redelivered: item.redelivered,
      };
      raws.set(delivery, rawOf(item.queue, item.source));
      return delivery;
    });
    const settler = eventSettler(runtime.broker(), raws);
    const events = await dispatchBatch(settler, registry, deliveries, executor, {
      maxInFlight: options.maxInFlight ?? 100,
      // middy aborts this just before the Lambda timeout: invokes not started by then are put
      // back through the delay levels, due at once, so the batch is still answered settled.
      signal,
      resultBackend: runtime.resultBackend?.() ?? null,
      events: runtime.events?.() ?? null,
      ...(options.onOutcome ? { onOutcome: options.onOutcome } : {}),
    }).finally(() => {
      instrumented?.flush();
    });
    const counts: DispatcherResult = {};
    for (const { outcome } of events) counts[outcome.kind] = (counts[outcome.kind] ?? 0) + 1;
    return counts;
  };
  return middy(dispatch);
}

/** The event's message in the broker-neutral wire form, as it came. */
function rawOf(queue: string, source: Parameters<typeof toAmqpDelivery>[1]): RawDelivery {
  const amqp = toAmqpDelivery(queue, source);
  return {
    headers: amqp.properties.headers,
    body: Buffer.from(amqp.content).toString('utf8'),
    contentType: amqp.properties.contentType,
    contentEncoding: amqp.properties.contentEncoding,
    priority: amqp.properties.priority,
    replyTo: amqp.properties.replyTo,
    exchange: amqp.fields.exchange,
    routingKey: amqp.fields.routingKey,
    redelivered: amqp.fields.redelivered,
  };
}

/**
 * Settles messages the event source holds: nothing to do for a finished one (the event source
 * acknowledges the batch), a re-publish for one to run later, a store for a dead one. A
 * workflow's continuations are published through it before the settle (the flow's
 * `performEffects`), so before this handler returns and the batch is acknowledged.
 */
function eventSettler(
  broker: Broker,
  raws: Map<Delivery, RawDelivery>,
): Pick<Broker, 'settle' | 'publish'> {
  return {
    publish: (messages) => broker.publish(messages),
    async settle(items: readonly SettleItem[]): Promise<void> {
      const later: TaskMessage[] = [];
      const dead = [];
      for (const { delivery, settlement } of items) {
        if (settlement.kind === 'retry-later') {
          // The delay levels route by the message's eta: make it the due time.
          later.push({
            ...settlement.message,
            exchange: '',
            routingKey: delivery.queue,
            eta: settlement.dueAt,
          });
        } else if (settlement.kind === 'dead-letter') {
          // Every delivery of the batch was registered with its raw form when decoded.
          const raw = raws.get(delivery) as RawDelivery;
          dead.push({ queue: delivery.queue, raw, reason: settlement.reason });
        }
      }
      await Promise.all([broker.publish(later), broker.deadLetter(dead)]);
    },
  };
}
