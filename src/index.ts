/**
 * `serverless-celery`: Celery-style named tasks on AWS Lambda, speaking real Celery protocol v2 on
 * Redis and RabbitMQ. This entry point is what an app declares and publishes with: the task
 * model, the registry, the errors, brokers and publishers, and the in-process worker. The Lambda
 * handler factories are `serverless-celery/lambda`; the Serverless Framework plugin is
 * `serverless-celery/serverless`.
 *
 * Everything not exported here or there is internal: adapters' key layouts, codecs and Lua
 * scripts may change in any release. `test/unit/public-api.test.ts` pins this list against
 * `api/public-api.md`.
 *
 * @example
 * import { createRegistry, defineTask } from 'serverless-celery';
 *
 * export const ping = defineTask({ name: 'app.ping', queue: 'events' }, () => 'pong');
 * export const registry = createRegistry({ tasks: [ping], queues: [{ name: 'events' }] });
 */
export type {
  Broker,
  BrokerLogger,
  BrokerOptionsBase,
  DeadLetterEntry,
  DeadLetterFilter,
  DeadLetterItem,
  Delivery,
  QueueStats,
  ReceiveOptions,
  SettleItem,
} from './brokers/broker.js';
export { type CreateBrokerOptions, createBroker } from './brokers/create-broker.js';
export { createControlMailbox } from './brokers/create-control-mailbox.js';
export {
  type CreateEventDispatcherOptions,
  createEventDispatcher,
} from './brokers/create-event-dispatcher.js';
export {
  RedisResultBackend,
  type RedisResultBackendOptions,
  redisResultBackend,
} from './brokers/redis/redis-result-backend.js';
export {
  type BrokerConfig,
  type BrokerConfigInput,
  DEFAULT_AMQP_URL,
  DEFAULT_BROKER_URL,
  parseBrokerConfig,
  type RabbitMqBrokerConfig,
  type RedisBrokerConfig,
  redactUrl,
} from './config/broker-config.js';
export {
  DEFAULT_RESULT_EXPIRES_SECONDS,
  parseResultBackendConfig,
  type ResultBackendConfig,
  type ResultBackendInput,
} from './config/result-backend-config.js';
export { AsyncResult, type GetOptions } from './core/async-result.js';
export {
  CELERY_EVENT_TYPES,
  type CeleryEvent,
  type CeleryEventType,
  type EventDraft,
} from './core/celery-events.js';
export {
  type EventDispatcher,
  type EventStamp,
  LamportClock,
  type SendEventsOptions,
  workerNodeName,
} from './core/event-dispatcher.js';
export * from './core/index.js';
export { DEFAULT_ORIGIN } from './core/message.js';
export type { ControlMailbox, ControlReplyTo, ControlRequest } from './core/remote-control.js';
export {
  type EncodedException,
  type OutcomeRecord,
  type ResultBackend,
  type ResultMeta,
  ResultTimeoutError,
  TASK_STATES,
  TaskFailedError,
  type TaskState,
} from './core/result-backend.js';
export {
  ambientTraceContext,
  runWithTraceContext,
  SENT_HEADER,
  TRACE_HEADERS,
  type TraceContext,
  type TraceHeader,
  type TraceIds,
  traceContextFromXRay,
  traceContextOf,
  traceIdsOf,
  withTraceContext,
} from './core/trace-context.js';
export {
  type ChordSizeStore,
  createPublisher,
  type Publisher,
  type PublisherOptions,
  type SendTaskCall,
} from './producer/publisher.js';
export {
  type AttemptInput,
  type AttemptLevel,
  type AttemptRecord,
  attemptJsonLine,
  attemptLevel,
  attemptMessage,
  attemptRecord,
  ERROR_MESSAGE_MAX,
} from './worker/attempt-log.js';
export type { DispatchOptions } from './worker/dispatch.js';
export type { DispatchOutcome, WorkerEvent } from './worker/events.js';
export { type TaskExecutor, ThrottledError } from './worker/executor.js';
export { runLocalWorker, runWorker, type WorkerOptions } from './worker/local-worker.js';
export { PRESENCE_MODES, type PresenceMode } from './worker/worker-presence.js';
