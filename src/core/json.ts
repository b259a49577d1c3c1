/**
 * JSON as Celery speaks it: what a task argument may be, how big it may get, and how to read the
 * JSON that Python producers actually write (bare `NaN`, kombu ≥ 5.3 tagged values).
 */
import { randomUUID } from 'node:crypto';
import type { FieldIssue } from './errors.js';

/** A JSON primitive. */
export type JsonPrimitive = string | number | boolean | null;

/** Any JSON value: what task arguments are made of. */
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object: the shape of task kwargs. */
export type JsonObject = { [key: string]: JsonValue };

/** Default limit on the encoded message body: arguments are ids, not data. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/** Depth beyond which an argument is refused: a deeply nested argument is data, not an id. */
const MAX_ARGUMENT_DEPTH = 32;

/**
 * Lists every reason `value` is not a plain JSON value, with the path to the offending field.
 *
 * Refused: `undefined`, functions, symbols, `BigInt`, `NaN`/`±Infinity` (JSON has no such
 * numbers and `JSON.stringify` would quietly turn them into `null`), `Date` (it would silently
 * become a string of our choosing; convert it with `toISOString()` yourself), class instances,
 * `Map`/`Set`/typed arrays, sparse arrays, circular references and nesting deeper than 32.
 *
 * @param value - the argument to check
 * @param path - where it sits, used as the prefix of every issue path
 * @returns the problems found; empty when the value is plain JSON
 */
export function findJsonIssues(value: unknown, path: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  visit(value, path, 0, new Set(), issues);
  return issues;
}

function visit(
  value: unknown,
  path: string,
  depth: number,
  seen: Set<object>,
  issues: FieldIssue[],
): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) {
        issues.push({ path, message: `${value} is not a JSON number` });
      }
      return;
    case 'undefined':
      issues.push({ path, message: 'undefined is not JSON (use null, or leave the key out)' });
      return;
    case 'bigint':
      issues.push({ path, message: 'BigInt is not JSON (send it as a string)' });
      return;
    case 'function':
    case 'symbol':
      issues.push({ path, message: `a ${typeof value} is not JSON` });
      return;
  }
  if (value === null) return;
  const object = value as object;
  if (depth >= MAX_ARGUMENT_DEPTH) {
    issues.push({ path, message: `nested deeper than ${MAX_ARGUMENT_DEPTH} levels` });
    return;
  }
  if (seen.has(object)) {
    issues.push({ path, message: 'circular reference' });
    return;
  }
  seen.add(object);
  if (Array.isArray(object)) {
    for (let index = 0; index < object.length; index++) {
      if (!(index in object)) {
        issues.push({ path: `${path}[${index}]`, message: 'sparse array hole is not JSON' });
        continue;
      }
      visit(object[index], `${path}[${index}]`, depth + 1, seen, issues);
    }
  } else if (object instanceof Date) {
    issues.push({ path, message: 'Date is not JSON (pass date.toISOString())' });
  } else if (!isPlainObject(object)) {
    const kind = object.constructor?.name ?? 'object';
    issues.push({ path, message: `${kind} instance is not a plain JSON object` });
  } else {
    for (const [key, item] of Object.entries(object)) {
      visit(item, path ? `${path}.${key}` : key, depth + 1, seen, issues);
    }
  }
  seen.delete(object);
}

/** True for `{}` literals and `Object.create(null)` objects, false for class instances. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** A JSON string literal, or one of the bare tokens Python writes for non-finite floats. */
const PYTHON_TOKENS = /"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g;

/**
 * Parses JSON the way Python's `json.loads` accepts it.
 *
 * Fast path: `JSON.parse`. Python's `json.dumps` writes bare `NaN`, `Infinity` and `-Infinity`
 * for non-finite floats, which `JSON.parse` rejects; only then are those tokens (outside string
 * literals) rewritten: `±Infinity` as `±1e999`, which `JSON.parse` reads as ±Infinity, and `NaN`
 * as a string no message can hold (a random UUID per parse) that a reviver turns into NaN.
 *
 * @throws SyntaxError when the text is not JSON even by Python's rules
 */
export function parsePythonJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    if (!/NaN|Infinity/.test(text)) throw error;
    const nan = `\u0000NaN:${randomUUID()}`;
    let sawNaN = false;
    const rewritten = text.replace(PYTHON_TOKENS, (token) => {
      if (token === 'NaN') {
        sawNaN = true;
        return JSON.stringify(nan);
      }
      if (token === 'Infinity') return '1e999';
      if (token === '-Infinity') return '-1e999';
      return token;
    });
    return sawNaN
      ? JSON.parse(rewritten, (_key, value: unknown) => (value === nan ? Number.NaN : value))
      : JSON.parse(rewritten);
  }
}

/**
 * Replaces kombu ≥ 5.3 tagged values (`{"__type__": "datetime", "__value__": "…"}`) by the plain
 * JSON that kombu 5.2 would have written, so tasks see strings for dates, decimals and UUIDs
 * whichever Python version produced the message.
 *
 * @returns the value with every tagged object replaced
 * @throws TypeError on an unknown tag, as kombu itself does
 */
export function untagKombuJson(value: unknown): unknown {
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let index = 0; index < value.length; index++) {
      const item = value[index];
      const untagged = untagKombuJson(item);
      if (untagged !== item) {
        copy ??= value.slice();
        copy[index] = untagged;
      }
    }
    return copy ?? value;
  }
  if (!isPlainObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 2 && '__type__' in value && '__value__' in value) {
    return untagValue(value.__type__, value.__value__);
  }
  let copy: Record<string, unknown> | undefined;
  for (const key of keys) {
    const item = value[key];
    const untagged = untagKombuJson(item);
    if (untagged !== item) {
      copy ??= { ...value };
      copy[key] = untagged;
    }
  }
  return copy ?? value;
}

function untagValue(type: unknown, value: unknown): unknown {
  switch (type) {
    case 'datetime':
    case 'date':
    case 'time':
    case 'decimal':
    case 'bytes':
      if (typeof value === 'string') return value;
      break;
    case 'base64':
      if (typeof value === 'string') return Buffer.from(value, 'base64').toString('utf8');
      break;
    case 'uuid': {
      const hex = typeof value === 'string' ? value : isPlainObject(value) ? value.hex : undefined;
      if (typeof hex === 'string') return formatUuid(hex);
      break;
    }
    default:
      throw new TypeError(`unknown kombu JSON type tag ${JSON.stringify(type)}`);
  }
  throw new TypeError(`kombu JSON value tagged ${String(type)} has an unexpected shape`);
}

function formatUuid(hex: string): string {
  const digits = hex.replaceAll('-', '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(digits))
    throw new TypeError(`invalid UUID (${hex.length} characters)`);
  return `${digits.slice(0, 8)}-${digits.slice(8, 12)}-${digits.slice(12, 16)}-${digits.slice(16, 20)}-${digits.slice(20)}`;
}
