import { describe, expect, it } from 'vitest';
import { exceptionRepr, pythonRepr } from '../../../src/core/python-repr.js';

describe('pythonRepr', () => {
  it.each([
    ['null', null, 'None'],
    ['undefined', undefined, 'None'],
    ['true', true, 'True'],
    ['false', false, 'False'],
    ['an int', 42, '42'],
    ['a large int', 123456789012345, '123456789012345'],
    ['an int beyond 2^53, as JSON writes it', 999999999999999900000, '999999999999999900000'],
    ['an integral number from 1e21 (JSON writes a float)', 1e21, '1e+21'],
    ['a float', -2.5, '-2.5'],
    ['a small float', 0.0001, '0.0001'],
    ['a float below 1e-4', 1e-5, '1e-05'],
    ['a float with a large exponent', 1.5e300, '1.5e+300'],
    ['NaN', Number.NaN, 'None'],
    ['a plain string', 'abc', "'abc'"],
    ["a string with '", "it's", `"it's"`],
    ['a string with both quotes', `'"`, `'\\'"'`],
    ['a backslash', 'a\\b', "'a\\\\b'"],
    ['control characters', 'a\tb\nc\rd\u0007', "'a\\tb\\nc\\rd\\x07'"],
    ['a no-break space', '\u00a0', "'\\xa0'"],
    ['a zero-width space', '\u200b', "'\\u200b'"],
    ['printable non-ASCII', 'é€😀', "'é€😀'"],
    ['a list', [1, 'a', null], "[1, 'a', None]"],
    ['a dict', { a: 1, b: [true] }, "{'a': 1, 'b': [True]}"],
    ['empty containers', [{}, []], '[{}, []]'],
    ['a Date, through its JSON', new Date(0), "'1970-01-01T00:00:00.000Z'"],
    ['a BigInt, as an int', { n: 12n }, "{'n': 12}"],
  ])('prints %s as Python does', (_case, value, expected) => {
    expect(pythonRepr(value)).toBe(expected);
  });

  it('cuts text longer than the limit to the limit, ending in ...', () => {
    const text = pythonRepr('x'.repeat(2000));

    expect(text).toHaveLength(1024);
    expect(text.endsWith('...')).toBe(true);
    expect(pythonRepr('x'.repeat(20), 10)).toBe("'xxxxxx...");
  });
});

function circular(): object {
  const value: Record<string, unknown> = {};
  value.self = value;
  return value;
}

describe('exceptionRepr', () => {
  it.each([
    ['an Error', new TypeError('card declined'), "TypeError('card declined')"],
    [
      'a custom error name',
      Object.assign(new Error('x'), { name: 'RetryableError' }),
      "RetryableError('x')",
    ],
    ['a thrown string', 'boom', "Exception('boom')"],
    ['a thrown object', { code: 7 }, "Exception({'code': 7})"],
    ['a circular object', circular(), "Exception('[object Object]')"],
  ])('prints %s as safe_repr(exc) would', (_case, thrown, expected) => {
    expect(exceptionRepr(thrown)).toBe(expected);
  });
});
