/**
 * The JSON text of an event's fields, written by hand for the stamper (`event-dispatcher.ts`):
 * a worker with events on stamps three events per task, and `JSON.stringify` of each draft's
 * fields, then of the list again to put it in kombu's Redis envelope, was the larger part of
 * what events cost its drain rate (bench/drain.ts). The text is what `JSON.stringify` writes
 * (same keys, order, values; `undefined` left out), either as it is or `quoted`: as it reads
 * inside a JSON string, quotes and backslashes escaped, so that an envelope carrying the body
 * as a string takes it without a second pass.
 */
import type { JsonValue } from './json.js';

/** Printable ASCII but `"` and `\`: a string of these is written as it is, quoted or not. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Keys whose text is kept; field names are few (Celery's), a caller's own are not cached. */
const CACHED_KEYS = 256;

/** A key's text before its value: `,"key":`, and `,"key":"` for a plain string's. */
interface KeyText {
  readonly open: string;
  readonly openString: string;
}

/** The entry of a key {@link JsonTextWriter.fields} leaves out. */
const SKIPPED: KeyText = { open: '', openString: '' };

/** Writes JSON values and `,"key":value` runs, as JSON text or `quoted`. */
export class JsonTextWriter {
  /** `"`, or `\"` when quoted. */
  readonly quote: string;
  readonly #quoted: boolean;
  readonly #keys = new Map<string, KeyText>();

  /** @param skipped keys {@link fields} leaves out */
  constructor(quoted: boolean, skipped: readonly string[] = []) {
    this.#quoted = quoted;
    this.quote = quoted ? '\\"' : '"';
    for (const key of skipped) this.#keys.set(key, SKIPPED);
  }

  /** A string's JSON text. */
  string(text: string): string {
    if (PLAIN.test(text)) return `${this.quote}${text}${this.quote}`;
    return this.#escaped(JSON.stringify(text));
  }

  /** A value's JSON text, `undefined` for what `JSON.stringify` leaves out. */
  value(value: JsonValue | undefined): string | undefined {
    switch (typeof value) {
      case 'string':
        return this.string(value);
      case 'number':
        return Number.isFinite(value) ? String(value) : 'null';
      case 'boolean':
        return value ? 'true' : 'false';
      case 'object':
        return value === null ? 'null' : this.#escaped(JSON.stringify(value));
      default:
        return undefined;
    }
  }

  /**
   * Appends `,"key":` and the value's text to `parts` for each own field in order, but the
   * skipped ones and those `JSON.stringify` leaves out (`undefined`). Parts are joined once by
   * the caller, and a plain string goes in as it is between its quotes: three events per task
   * made this the worker's busiest allocation site when each value was a string of its own.
   */
  fields(fields: Readonly<Record<string, JsonValue | undefined>>, parts: string[]): void {
    for (const key in fields) {
      const text = this.#key(key);
      if (text === SKIPPED || !Object.hasOwn(fields, key)) continue;
      const value = fields[key];
      if (typeof value === 'string' && PLAIN.test(value)) {
        parts.push(text.openString, value, this.quote);
      } else {
        const written = this.value(value);
        if (written !== undefined) parts.push(text.open, written);
      }
    }
  }

  /** The key's text, looked up once per key: one map lookup per field is all it costs. */
  #key(key: string): KeyText {
    let text = this.#keys.get(key);
    if (text === undefined) {
      const open = `,${this.string(key)}:`;
      text = { open, openString: `${open}${this.quote}` };
      if (this.#keys.size < CACHED_KEYS) this.#keys.set(key, text);
    }
    return text;
  }

  #escaped(json: string): string {
    return this.#quoted ? JSON.stringify(json).slice(1, -1) : json;
  }
}
