/**
 * The public part of the pure core: the task model, the registry, the errors a caller branches
 * on, and the types a task, a publisher or a worker's `onOutcome` sees. Imports no broker, no
 * Lambda and no middy code (a Biome rule enforces it).
 *
 * Left out on purpose: the Celery protocol codecs (`wire.ts`, `redis-codec.ts`, `amqp-codec.ts`),
 * the retry decision and the runner, which the adapters and the Lambda layer use through their
 * own modules; `applySignature` and the other canvas internals, which the worker uses to send
 * continuations. Tests and benchmarks import those files directly.
 */
export { type Canvas, type ChordSize, chain, chord, group } from './canvas.js';
export {
  DEAD_LETTER_REASONS,
  type DeadLetterReason,
  type DeadLetterReasonCode,
} from './dead-letter.js';
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
  UnknownTaskError,
} from './errors.js';
export {
  DEFAULT_MAX_BODY_BYTES,
  type JsonObject,
  type JsonPrimitive,
  type JsonValue,
} from './json.js';
export type { TaskMessage, TimeLimit } from './message.js';
export type { OnceStore } from './once-store.js';
export type { QueueDeclaration, QueueDeclarationInput } from './queue.js';
export {
  createRegistry,
  type Registry,
  type RegistryInput,
  type TaskLookup,
  type TaskModule,
} from './registry.js';
export type { Backoff, ErrorClass, ErrorMatcher, RetryPolicy } from './retry-policy.js';
export { throwIfAborted } from './run-task.js';
export type { Schedule } from './schedule.js';
export type { Settlement } from './settlement.js';
export {
  type SignatureDict,
  type SignatureInit,
  type SignatureOptions,
  signature,
} from './signature.js';
export {
  type ArgsSchema,
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
  type TaskSignatureInput,
} from './task.js';
export type { TaskOutcome } from './task-outcome.js';
export type { DecodeFailure, DecodeResult, DecodeSuccess, RawDelivery } from './wire.js';
