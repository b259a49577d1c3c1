import { describe, expect, it } from 'vitest';
import { parsePythonJson } from '../../../src/core/json.js';

describe('parsePythonJson', () => {
  it.each([
    ['plain JSON', '{"a": [1, "x"]}', { a: [1, 'x'] }],
    ['bare NaN', '[NaN]', [Number.NaN]],
    [
      'Infinity and -Infinity',
      '{"hi": Infinity, "lo": -Infinity}',
      { hi: Infinity, lo: -Infinity },
    ],
    [
      'tokens inside strings left alone',
      '["NaN", "-Infinity", NaN]',
      ['NaN', '-Infinity', Number.NaN],
    ],
    ['escaped quotes before a token', '["a\\"NaN", NaN]', ['a"NaN', Number.NaN]],
    ['a string ending in a backslash', '["x\\\\", Infinity]', ['x\\', Infinity]],
    ['nested', '[[NaN, {"k": [Infinity]}], {}]', [[Number.NaN, { k: [Infinity] }], {}]],
  ])('reads %s as Python wrote it', (_, text, expected) => {
    // Act
    const value = parsePythonJson(text);

    // Assess
    expect(value).toEqual(expected);
  });

  it.each([
    ['a misspelt token', '[Nan]'],
    ['single quotes', "['a']"],
    ['a comment', '[1] // note'],
    ['a trailing comma', '[NaN,]'],
    ['a token glued to a word', '[NaNx]'],
  ])('refuses %s, as json.loads does', (_, text) => {
    // Act
    const parse = () => parsePythonJson(text);

    // Assess
    expect(parse).toThrow(SyntaxError);
  });
});
