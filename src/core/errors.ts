/**
 * Error family of serverless-celery.
 *
 * Every error we raise extends {@link CeleryError}. `name` is always a string literal, because
 * minifiers rename classes and errors rebuilt from a wire (a dead-letter reason, a Lambda error
 * payload) lose their prototype: callers branch on `name` or `code`, never on the class alone.
 */

/** Codes carried by errors that cross a wire (dead-letter reasons, invoke outcomes). */
export const ERROR_CODES = {
  invalidConfig: 'INVALID_CONFIG',
  invalidArguments: 'INVALID_ARGUMENTS',
  payloadTooLarge: 'PAYLOAD_TOO_LARGE',
  invalidMessage: 'INVALID_MESSAGE',
  unknownTask: 'UNKNOWN_TASK',
  brokerFailure: 'BROKER_FAILURE',
  maxRetriesExceeded: 'MAX_RETRIES_EXCEEDED',
  retry: 'RETRY',
  softTimeLimitExceeded: 'SOFT_TIME_LIMIT_EXCEEDED',
  timeLimitExceeded: 'TIME_LIMIT_EXCEEDED',
} as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** Base class of every error serverless-celery throws. */
export class CeleryError extends Error {
  override name: string = 'CeleryError';
  /** Stable machine-readable code; survives serialisation where the class does not. */
  readonly code: ErrorCode | 'CELERY_ERROR';

  constructor(message: string, options?: { cause?: unknown; code?: ErrorCode }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code ?? 'CELERY_ERROR';
  }
}

/** One problem found while validating input: where it is and what is wrong with it. */
export interface FieldIssue {
  /** Dotted path to the field, e.g. `kwargs.user_id` or `queues[1].maxPriority`. */
  readonly path: string;
  /** Human-readable reason. */
  readonly message: string;
}

function formatIssues(issues: readonly FieldIssue[]): string {
  return issues.map((issue) => `${issue.path || '(root)'}: ${issue.message}`).join('; ');
}

/**
 * A task option, queue declaration or registry is wrong. Raised at start-up (definition or
 * registration time), so a typo never reaches production traffic.
 */
export class InvalidConfigError extends CeleryError {
  override name = 'InvalidConfigError' as const;
  /** Every problem found, not just the first. */
  readonly issues: readonly FieldIssue[];

  constructor(subject: string, issues: readonly FieldIssue[], options?: { cause?: unknown }) {
    super(`${subject}: ${formatIssues(issues)}`, { ...options, code: ERROR_CODES.invalidConfig });
    this.issues = issues;
  }
}

/**
 * Arguments given to a task call (at publish time) or found in a message (at run time) do not
 * fit the task: not JSON, too large, or failing its kwargs schema.
 */
export class InvalidArgumentsError extends CeleryError {
  override name = 'InvalidArgumentsError' as const;
  /** Every field that failed, with its reason. */
  readonly issues: readonly FieldIssue[];
  /** Task the arguments were for. */
  readonly task: string;

  constructor(task: string, issues: readonly FieldIssue[], options?: { cause?: unknown }) {
    super(`invalid arguments for task ${task}: ${formatIssues(issues)}`, {
      ...options,
      code: ERROR_CODES.invalidArguments,
    });
    this.issues = issues;
    this.task = task;
  }
}

/**
 * The encoded body of a task call is over the size limit. Arguments are ids, not data: store the
 * data somewhere and pass its key.
 */
export class PayloadTooLargeError extends CeleryError {
  override name = 'PayloadTooLargeError' as const;
  /** Encoded body size in bytes. */
  readonly bytes: number;
  /** The limit in bytes. */
  readonly limit: number;
  /** Task the arguments were for. */
  readonly task: string;

  constructor(task: string, bytes: number, limit: number) {
    super(
      `arguments for task ${task} encode to ${bytes} bytes, over the limit of ${limit} bytes: pass ids, not data`,
      { code: ERROR_CODES.payloadTooLarge },
    );
    this.bytes = bytes;
    this.limit = limit;
    this.task = task;
  }
}

/** Reasons a message cannot be decoded; each one maps to a dead-letter reason. */
export const INVALID_MESSAGE_REASONS = {
  malformedEnvelope: 'malformed-envelope',
  unsupportedContentType: 'unsupported-content-type',
  unsupportedEncoding: 'unsupported-encoding',
  malformedBody: 'malformed-body',
  missingHeader: 'missing-header',
  invalidHeader: 'invalid-header',
} as const;

/** One of {@link INVALID_MESSAGE_REASONS}. */
export type InvalidMessageReason =
  (typeof INVALID_MESSAGE_REASONS)[keyof typeof INVALID_MESSAGE_REASONS];

/** A message on the broker cannot be decoded as a Celery task message. */
export class InvalidMessageError extends CeleryError {
  override name = 'InvalidMessageError' as const;
  /** Category of the defect, for dead-letter bookkeeping and metrics. */
  readonly reason: InvalidMessageReason;

  constructor(reason: InvalidMessageReason, detail: string, options?: { cause?: unknown }) {
    super(`invalid message (${reason}): ${detail}`, {
      ...options,
      code: ERROR_CODES.invalidMessage,
    });
    this.reason = reason;
  }
}

/** A message names a task that this registry does not know. */
export class UnknownTaskError extends CeleryError {
  override name = 'UnknownTaskError' as const;
  /** The task name found in the message. */
  readonly task: string;

  constructor(task: string) {
    super(`unregistered task: ${task}`, { code: ERROR_CODES.unknownTask });
    this.task = task;
  }
}

/** The broker could not be reached or refused an operation. */
export class BrokerError extends CeleryError {
  override name = 'BrokerError' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: ERROR_CODES.brokerFailure });
  }
}

/**
 * A task asked to retry (or failed with a retryable error) after its last allowed retry.
 * `cause` holds the original error, which is what the task finally fails with.
 */
export class MaxRetriesExceededError extends CeleryError {
  override name = 'MaxRetriesExceededError' as const;
  /** The retry count of the attempt that gave up. */
  readonly retries: number;

  constructor(task: string, retries: number, options?: { cause?: unknown }) {
    super(`task ${task}: max retries exceeded after ${retries} retries`, {
      ...options,
      code: ERROR_CODES.maxRetriesExceeded,
    });
    this.retries = retries;
  }
}

/** What a task passes to `ctx.retry()`: when to run again and why. */
export interface RetryRequest {
  /** Seconds from now. Defaults to the task's `defaultRetryDelay`. */
  readonly countdown?: number;
  /** Absolute time to run again; wins over `countdown`. */
  readonly eta?: Date;
  /** The error that caused the retry; the task fails with it once retries are exhausted. */
  readonly exc?: unknown;
}

/**
 * Control-flow signal thrown by `ctx.retry()` (Celery's `Retry`): not a failure, a request to
 * run the task again later. The retry decision turns it into a delayed re-publish.
 */
export class RetrySignal extends CeleryError {
  override name = 'RetrySignal' as const;
  /** The options the task passed to `ctx.retry()`. */
  readonly request: RetryRequest;

  constructor(request: RetryRequest = {}) {
    super('task requested a retry', {
      cause: request.exc,
      code: ERROR_CODES.retry,
    });
    this.request = request;
  }
}

/**
 * Where the time limit a run is held to comes from: the message's `timelimit` header, the task's
 * own `timeLimit` / `softTimeLimit` options, or the time its host (a Lambda function) has left.
 */
export type TimeLimitSource = 'message' | 'task' | 'host';

function describeLimit(kind: string, seconds: number, source: TimeLimitSource): string {
  switch (source) {
    case 'message':
      return `the ${kind} of ${seconds} s set by its message`;
    case 'task':
      return `its ${kind} of ${seconds} s`;
    case 'host':
      return `the function's remaining time of ${seconds} s`;
  }
}

/**
 * The task ran past its soft time limit (Celery's `SoftTimeLimitExceeded`). It is the reason of
 * the task's abort signal, so `throwIfAborted(ctx.signal)` throws it; a task may catch it, clean
 * up and still return. Thrown out of a task, it goes through the retry decision like any error.
 */
export class SoftTimeLimitExceeded extends CeleryError {
  override name = 'SoftTimeLimitExceeded' as const;
  /** The soft limit, in seconds. */
  readonly seconds: number;
  /** What set it. */
  readonly source: Exclude<TimeLimitSource, 'host'>;

  constructor(task: string, seconds: number, source: Exclude<TimeLimitSource, 'host'> = 'task') {
    super(`task ${task} exceeded ${describeLimit('soft time limit', seconds, source)}`, {
      code: ERROR_CODES.softTimeLimitExceeded,
    });
    this.seconds = seconds;
    this.source = source;
  }
}

/**
 * The task ran past its hard time limit (Celery's `TimeLimitExceeded`), or past the time its
 * Lambda function had left: its message gets its outcome then, whether or not the task ever
 * settles. Retried only if the task's `retry.on` lists it.
 */
export class TimeLimitExceededError extends CeleryError {
  override name = 'TimeLimitExceeded' as const;
  /** The limit that fired, in seconds. */
  readonly seconds: number;
  /** What set it. */
  readonly source: TimeLimitSource;

  constructor(task: string, seconds: number, source: TimeLimitSource = 'task') {
    super(`task ${task} exceeded ${describeLimit('time limit', seconds, source)}`, {
      code: ERROR_CODES.timeLimitExceeded,
    });
    this.seconds = seconds;
    this.source = source;
  }
}

/**
 * Turns anything thrown into an `Error`, so code past this boundary can rely on `name` and
 * `message`. Non-errors (strings, objects) become an `Error` whose `cause` is the original value.
 */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  const text = typeof thrown === 'string' ? thrown : safeDescribe(thrown);
  return new Error(`non-error thrown: ${text}`, { cause: thrown });
}

function safeDescribe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    // Circular or exotic values: String() never throws for what reaches here.
    return String(value);
  }
}
