/**
 * The pure core: task model, registry, Celery protocol v2 codec and retry decision. Imports no
 * broker, no Lambda and no middy code (a Biome rule enforces it).
 */
export {
  type AmqpDelivery,
  type AmqpEncoded,
  type AmqpPublishOptions,
  decodeAmqpMessage,
  encodeAmqpMessage,
  type TypedFieldValue,
  typeAmqpHeaderValue,
  untypeAmqpValue,
} from './amqp-codec.js';
export {
  BrokerError,
  CeleryError,
  ERROR_CODES,
  type ErrorCode,
  type FieldIssue,
  INVALID_MESSAGE_REASONS,
  InvalidArgumentsError,
  InvalidConfigError,
  InvalidMessageError,
  type InvalidMessageReason,
  MaxRetriesExceededError,
  PayloadTooLargeError,
  type RetryRequest,
  RetrySignal,
  SoftTimeLimitExceeded,
  TimeLimitExceededError,
  type TimeLimitSource,
  toError,
  UnknownTaskError,
} from './errors.js';
export {
  DEFAULT_MAX_BODY_BYTES,
  findJsonIssues,
  type JsonObject,
  type JsonPrimitive,
  type JsonValue,
  parsePythonJson,
  untagKombuJson,
} from './json.js';
export {
  createRetryMessage,
  createTaskMessage,
  DEFAULT_ORIGIN,
  EMPTY_EMBED,
  type Embed,
  type TaskCall,
  type TaskMessage,
  type TimeLimit,
} from './message.js';
export {
  type QueueDeclaration,
  type QueueDeclarationInput,
  queueArguments,
  queueDeclarationSchema,
} from './queue.js';
export {
  decodeRedisMessage,
  decodeUnackedEntry,
  encodeRedisEnvelopeFromRaw,
  encodeRedisMessage,
  encodeUnackedEntry,
  expirationMillis,
  KOMBU_SEPARATOR,
  REDIS_PRIORITY_STEPS,
  type RedisDecodeResult,
  type RedisEncoded,
  redisBindingMember,
  redisPriorityKey,
  redisQueueKeys,
  type UnackedEntry,
} from './redis-codec.js';
export {
  createRegistry,
  type Registry,
  type RegistryInput,
  type TaskLookup,
  type TaskModule,
} from './registry.js';
export {
  type Backoff,
  backoffSeconds,
  decideRetry,
  type ErrorClass,
  type ErrorMatcher,
  matchesAny,
  type RetryDecision,
  type RetryInput,
  type RetryPolicy,
} from './retry-policy.js';
export { nextRuns, parseSchedule, RATE_UNITS, type Schedule } from './schedule.js';
export {
  type ArgsSchema,
  createTaskContext,
  DEFAULT_MAX_RETRIES,
  DEFAULT_QUEUE,
  DEFAULT_RETRY_DELAY_SECONDS,
  defineTask,
  isTask,
  type KwargsSchema,
  type ParsedArguments,
  type Task,
  type TaskCallInput,
  type TaskCallOptions,
  type TaskContext,
  type TaskHandler,
  type TaskKwargs,
  type TaskOptions,
  type TaskOptionsInput,
  taskOptionsSchema,
} from './task.js';
export { formatCeleryTime, parseCeleryTime } from './time.js';
export {
  type CeleryHeaders,
  CONTENT_ENCODING,
  CONTENT_TYPE,
  type DecodeFailure,
  type DecodeResult,
  type DecodeSuccess,
  decodeDelivery,
  type RawDelivery,
  serializeBody,
  toCeleryHeaders,
  toRawDelivery,
} from './wire.js';
