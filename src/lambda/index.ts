/**
 * `serverless-celery/lambda`: the factories of an app's Lambda functions, one function file each
 * (`export const handler = createTaskHandler(registry, 'ingest.save_event')`), the runtime they
 * share, and the once stores and cron locks a function is given by hand.
 *
 * A separate entry point from `serverless-celery`, so that a task function, which imports its
 * registry and this module, pulls in middy but no broker runtime; a bundler keeps one broker
 * client per function (`SERVERLESS_CELERY_BROKER`, see `createBroker`).
 *
 * @example
 * // functions/poller.ts
 * import { createPollerHandler, createRuntime } from 'serverless-celery/lambda';
 * import { registry } from '../src/registry.js';
 *
 * export const handler = createPollerHandler(createRuntime({ registry }));
 */
export {
  decodeRmqEvent,
  type RmqEvent,
  type RmqEventDelivery,
  type RmqEventMessage,
} from '../brokers/rabbitmq/amazon-mq-event.js';
export {
  type RabbitMqOnceStoreOptions,
  rabbitMqOnceStore,
} from '../brokers/rabbitmq/rabbitmq-once-store.js';
export { type RedisOnceStoreOptions, redisOnceStore } from '../brokers/redis/redis-once-store.js';
export { CELERY_EVENTS_ENV, celeryEventsFromEnv } from '../config/events-config.js';
export type { CallInput, PublishResult } from '../producer/publish-call.js';
export {
  type AmazonMqDispatcherOptions,
  createAmazonMqDispatcher,
  type DispatcherResult,
} from './amazon-mq-dispatcher.js';
export {
  type CronEvent,
  type CronHandlerOptions,
  type CronResult,
  createCronHandler,
  redisTickLock,
  type TickLock,
} from './cron-handler.js';
export type { RelayStop } from './drain-relay.js';
export { taskFunctionKey } from './function-names.js';
export type { LambdaInvoker } from './lambda-executor.js';
export {
  type AttemptLogger,
  createLogger,
  DEFAULT_SERVICE_NAME,
  logAttempt,
} from './logging.js';
export {
  createMetrics,
  DEFAULT_METRICS_NAMESPACE,
  publishAttemptMetrics,
  TASK_METRICS,
  type TaskMetricsSink,
} from './metrics.js';
export {
  DISPATCH_METRICS,
  type InstrumentedExecutor,
  instrumentExecutor,
} from './metrics-executor.js';
export { createPollerHandler, type PollerOptions, type PollerResult } from './poller-handler.js';
export {
  createHttpProducerHandler,
  createInvokeProducerHandler,
  type HttpProducerOptions,
  type InvokeProducerEvent,
  type ResultView,
} from './producer-handlers.js';
export {
  brokerConfigFromEnv,
  createRuntime,
  type LambdaRuntime,
  type RuntimeOptions,
} from './runtime.js';
export {
  createTaskHandler,
  type TaskHandlerOptions,
  type TaskInvocation,
  type TaskInvocationResult,
} from './task-handler.js';
