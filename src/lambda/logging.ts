/**
 * The task function's log line per attempt, through Powertools Logger: one JSON object per
 * message with the {@link AttemptRecord} fields, plus what Powertools' `injectLambdaContext`
 * adds per invocation (`cold_start`, `function_request_id`, `function_name`, `xray_trace_id`).
 * The level comes from `POWERTOOLS_LOG_LEVEL`, else `LOG_LEVEL` (Powertools reads both).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import {
  type AttemptInput,
  type AttemptRecord,
  attemptLevel,
  attemptMessage,
  attemptRecord,
} from '../worker/attempt-log.js';

/** The slice of a logger an attempt is written to (Powertools `Logger` has it). */
export interface AttemptLogger {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

/** Our service name in logs and metrics when `POWERTOOLS_SERVICE_NAME` is not set. */
export const DEFAULT_SERVICE_NAME = 'serverless-celery';

/**
 * A Powertools Logger for the functions of this library: service `POWERTOOLS_SERVICE_NAME`,
 * else {@link DEFAULT_SERVICE_NAME}.
 */
export function createLogger(env: NodeJS.ProcessEnv = process.env): Logger {
  return new Logger({ serviceName: env.POWERTOOLS_SERVICE_NAME || DEFAULT_SERVICE_NAME });
}

/**
 * Writes the line of one attempt: `info` for a run that settled, `warn` for a retry, `error`
 * for a message lost to the dead-letter queue. Argument values are never part of it.
 *
 * @param settledAt - when the outcome was known @defaultValue now
 * @returns the record written, for the metrics of the attempt
 */
export function logAttempt(
  logger: AttemptLogger,
  input: AttemptInput,
  settledAt: Date = new Date(),
): AttemptRecord {
  const record = attemptRecord(input, settledAt);
  logger[attemptLevel(input.outcome)](attemptMessage(record), { ...record });
  return record;
}
