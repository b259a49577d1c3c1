/**
 * Python `repr()` text of JSON-like values, for the display fields of Celery events (`result`,
 * `exception`) that Celery fills with `saferepr(...)`: Flower and `celery events` show these
 * strings as they are, so `{'id': 1, 'ok': True}` reads as it would from a Python worker.
 *
 * Left out: Python's tuple/set/bytes reprs (JSON has none) and saferepr's depth limit.
 */

/** Celery's `resultrepr_maxsize` and `argsrepr_maxsize`: a repr is cut to this many characters. */
export const PYTHON_REPR_MAX_LENGTH = 1024;

/**
 * The Python `repr()` of a JSON-like value: `None`, `True`/`False`, ints and floats as Python
 * prints them, strings in Python's quoting, lists and dicts. Values that are not JSON go through
 * `toJSON`/`JSON.stringify` first (a `Date` becomes its ISO string); `undefined` is `None`.
 *
 * @param maxLength - cut longer text to this many characters, ending in `...`, like saferepr
 * @defaultValue maxLength {@link PYTHON_REPR_MAX_LENGTH}
 * @example
 * pythonRepr({ id: 1, tags: ['a'] }); // "{'id': 1, 'tags': ['a']}"
 */
export function pythonRepr(value: unknown, maxLength = PYTHON_REPR_MAX_LENGTH): string {
  const text = reprOf(toJsonLike(value));
  return text.length > maxLength ? `${text.slice(0, Math.max(0, maxLength - 3))}...` : text;
}

/**
 * What Celery's `safe_repr(exc)` prints for an exception: `Name('message')`, e.g.
 * `ValueError('boom')`. A thrown value that is not an `Error` becomes `Exception(<repr>)`.
 */
export function exceptionRepr(thrown: unknown): string {
  if (thrown instanceof Error) return `${thrown.name}(${reprOf(thrown.message)})`;
  return `Exception(${pythonRepr(thrown)})`;
}

function toJsonLike(value: unknown): unknown {
  if (value === undefined) return null;
  // Already JSON (most task results): no round trip through JSON text.
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  let text: string | undefined;
  try {
    // A BigInt prints as a Python int would (exactly up to 2^53).
    text = JSON.stringify(value, (_key, item) => (typeof item === 'bigint' ? Number(item) : item));
  } catch {
    // A circular object: the event must still be sent, so show its string form.
    return String(value);
  }
  // Functions and symbols stringify to undefined; Python would print some `<object>` text.
  return text === undefined ? String(value) : JSON.parse(text);
}

function reprOf(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return numberRepr(value);
  if (typeof value === 'string') return stringRepr(value);
  if (Array.isArray(value)) return `[${value.map(reprOf).join(', ')}]`;
  const entries = Object.entries(value as Record<string, unknown>);
  return `{${entries.map(([key, item]) => `${stringRepr(key)}: ${reprOf(item)}`).join(', ')}}`;
}

/**
 * What Python's `json.loads` makes of our JSON text: integral numbers below 1e21 are written
 * without a dot or exponent, so they come back as ints; the rest are floats. Floats use
 * Python's `repr(float)` layout: the shortest round-trip digits (which JavaScript computes too),
 * in fixed notation for decimal exponents -4 to 15 and as `1.5e+16` / `1e-05` otherwise.
 */
function numberRepr(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  if (Number.isInteger(value) && Math.abs(value) < 1e21) return String(value);
  const [mantissa = '', exponentText = '0'] = value.toExponential().split('e');
  const exponent = Number(exponentText);
  if (exponent >= -4 && exponent < 16) return String(value);
  const sign = exponent < 0 ? '-' : '+';
  return `${mantissa}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
}

/** Characters Python's `str.isprintable()` rejects (other than the space), escaped by repr. */
const NON_PRINTABLE = /[\p{C}\p{Z}]/u;

/**
 * Python quotes with `'` unless the text holds `'` and no `"`; escapes the backslash, the quote,
 * `\t \n \r`, and non-printable characters as `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
 */
function stringRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (char === '\\' || char === quote) out += `\\${char}`;
    else if (char === '\t') out += '\\t';
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char !== ' ' && NON_PRINTABLE.test(char)) out += escapeCode(code);
    else out += char;
  }
  return out + quote;
}

function escapeCode(code: number): string {
  const hex = code.toString(16);
  if (code < 0x100) return `\\x${hex.padStart(2, '0')}`;
  if (code < 0x10000) return `\\u${hex.padStart(4, '0')}`;
  return `\\U${hex.padStart(8, '0')}`;
}
