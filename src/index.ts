/**
 * serverless-celery: Celery-style named tasks on AWS Lambda, speaking real Celery protocol v2 on
 * Redis and RabbitMQ. This file is the public surface; everything not exported here is internal.
 */
export type {
  Broker,
  BrokerLogger,
  DeadLetterEntry,
  Delivery,
  QueueStats,
  ReceiveOptions,
  SettleItem,
} from './brokers/broker.js';
export { type CreateBrokerOptions, createBroker } from './brokers/create-broker.js';
export {
  decodeRmqEvent,
  type RmqEvent,
  type RmqEventDelivery,
  type RmqEventMessage,
} from './brokers/rabbitmq/amazon-mq-event.js';
export { RabbitMqBroker, type RabbitMqBrokerOptions } from './brokers/rabbitmq/rabbitmq-broker.js';
export {
  type RabbitMqOnceStoreOptions,
  rabbitMqOnceStore,
} from './brokers/rabbitmq/rabbitmq-once-store.js';
export { RedisBroker, type RedisBrokerOptions } from './brokers/redis/redis-broker.js';
export { defaultOnceStoreUrl, redisOnceStore } from './brokers/redis/redis-once-store.js';
export {
  type BrokerConfig,
  type BrokerConfigInput,
  brokerConfigSchema,
  DEFAULT_AMQP_URL,
  DEFAULT_BROKER_URL,
  parseBrokerConfig,
  type RabbitMqBrokerConfig,
  type RedisBrokerConfig,
  redactUrl,
} from './config/broker-config.js';
export {
  DEAD_LETTER_REASONS,
  type DeadLetterReason,
  type DeadLetterReasonCode,
} from './core/dead-letter.js';
export * from './core/index.js';
export {
  type RunOptions,
  type RunOutcome,
  runMessage,
  throwIfAborted,
} from './core/run-task.js';
export {
  INVOKE_FAILURES_HEADER,
  type Settlement,
  settlementFor,
  settlementForInvalid,
} from './core/settlement.js';
export { type TaskOutcome, toTaskOutcome } from './core/task-outcome.js';
export {
  type DispatchBatchOptions,
  type DispatchOptions,
  type DispatchOutcome,
  dispatchBatch,
  type WorkerEvent,
} from './worker/dispatch.js';
export { localExecutor, type TaskExecutor, ThrottledError } from './worker/executor.js';
export {
  processBatch,
  runLocalWorker,
  runWorker,
  type WorkerOptions,
} from './worker/local-worker.js';
