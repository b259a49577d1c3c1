/**
 * Parsers of option values, for commander's `argParser`. A bad value throws commander's
 * `InvalidArgumentError`, which commander reports naming the option (exit 2).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { isPlainObject, type JsonObject, type JsonValue } from '../core/json.js';

/** Options every command takes. */
export interface CommonOptions {
  /** App module. */
  readonly app?: string;
  /** Broker URL. */
  readonly broker?: string;
}

/** Adds `--app` and `--broker` to a command. */
export function withCommonOptions(command: Command): Command {
  return command
    .option(
      '--app <module>',
      'module exporting `registry` (default: $SERVERLESS_CELERY_APP, else the demo app)',
    )
    .option(
      '--broker <url>',
      'redis://, rediss://, amqp:// or amqps:// URL (default: $BROKER_URL, else redis://127.0.0.1:6379/0)',
    );
}

/** An integer ≥ 1. */
export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) {
    throw new InvalidArgumentError('expected a whole number of at least 1.');
  }
  return parsed;
}

/** An integer ≥ 0. */
export function nonNegativeInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) {
    throw new InvalidArgumentError('expected a whole number of at least 0.');
  }
  return parsed;
}

/** A finite number of seconds (fractions allowed). */
export function seconds(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed)) {
    throw new InvalidArgumentError('expected a number of seconds.');
  }
  return parsed;
}

/** An ISO 8601 date-time (`2025-01-31T12:00:00Z`). */
export function isoDate(value: string): Date {
  const parsed = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(parsed.getTime())) {
    throw new InvalidArgumentError('expected an ISO 8601 date-time such as 2025-01-31T12:00:00Z.');
  }
  return parsed;
}

/** Seconds from now, or an ISO 8601 date-time (Celery's `expires` takes both). */
export function secondsOrDate(value: string): number | Date {
  if (/^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  try {
    return isoDate(value);
  } catch {
    throw new InvalidArgumentError('expected seconds or an ISO 8601 date-time.');
  }
}

/** A JSON array (positional arguments). */
export function jsonArray(value: string): JsonValue[] {
  const parsed = parseJson(value);
  if (!Array.isArray(parsed))
    throw new InvalidArgumentError('expected a JSON array, e.g. [1, "a"].');
  return parsed as JsonValue[];
}

/** A JSON object (keyword arguments). */
export function jsonObject(value: string): JsonObject {
  const parsed = parseJson(value);
  if (!isPlainObject(parsed)) {
    throw new InvalidArgumentError('expected a JSON object, e.g. {"event_id": "evt-1"}.');
  }
  return parsed as JsonObject;
}

/** A comma-separated list of names, without blanks or repeats. */
export function nameList(value: string): string[] {
  const names = [...new Set(value.split(',').map((name) => name.trim()))].filter(Boolean);
  if (names.length === 0)
    throw new InvalidArgumentError('expected one or more names, comma-separated.');
  return names;
}

function parseJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new InvalidArgumentError(`not valid JSON (${(error as Error).message}).`);
  }
}
