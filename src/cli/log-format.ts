/**
 * The format of the worker's line per attempt: `text`, the aligned human line
 * ({@link formatWorkerEvent}), or `json`, the structured record the task function logs in Lambda
 * ({@link attemptJsonLine}), for log collectors. Chosen by `--log-format`, else `LOG_FORMAT`,
 * else from the terminal: people read a TTY, machines read a pipe.
 */
import type { Registry } from '../core/registry.js';
import { attemptJsonLine } from '../worker/attempt-log.js';
import type { WorkerEvent } from '../worker/events.js';
import { formatWorkerEvent } from './output.js';

/** The formats of the line per attempt. */
export const LOG_FORMATS = ['json', 'text'] as const;

/** One of {@link LOG_FORMATS}. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * The format to print in: the flag, else a valid `LOG_FORMAT`, else `text` on a terminal and
 * `json` elsewhere.
 *
 * @param stdoutIsTTY - `undefined` (not known) counts as a terminal: the format people read
 */
export function chooseLogFormat(
  flag: LogFormat | undefined,
  env: Readonly<Record<string, string | undefined>>,
  stdoutIsTTY: boolean | undefined,
): LogFormat {
  if (flag) return flag;
  const fromEnv = env.LOG_FORMAT?.trim().toLowerCase();
  if (fromEnv === 'json' || fromEnv === 'text') return fromEnv;
  return stdoutIsTTY === false ? 'json' : 'text';
}

/**
 * The line of one settled message in `format`.
 *
 * @example
 * context.stdout(formatAttempt('json', event, registry, new Date()));
 */
export function formatAttempt(
  format: LogFormat,
  event: WorkerEvent,
  registry: Registry,
  now: Date,
): string {
  return format === 'json' ? attemptJsonLine(event, now) : formatWorkerEvent(event, registry, now);
}
