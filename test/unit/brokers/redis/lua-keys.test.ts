/**
 * Every key our Lua scripts touch comes from `KEYS`: Redis Cluster routes a script by its
 * declared keys, and ElastiCache Serverless refuses one that reaches a key it did not declare.
 * A key name built inside a script (from `ARGV`, or by concatenation) would pass on one node and
 * in tests whose keys share a slot, so the scripts' text is checked here.
 */
import { describe, expect, it } from 'vitest';
import { PROMOTE_LUA } from '../../../../src/brokers/redis/lua/promote.js';
import { RECEIVE_LUA } from '../../../../src/brokers/redis/lua/receive.js';
import { REPLAY_ONE_LUA } from '../../../../src/brokers/redis/lua/replay-one.js';
import {
  DEAD_LETTER_ONE_LUA,
  RELEASE_MUTEX_LUA,
  RESTORE_ONE_LUA,
} from '../../../../src/brokers/redis/lua/restore-one.js';

const SCRIPTS = {
  PROMOTE_LUA,
  RECEIVE_LUA,
  REPLAY_ONE_LUA,
  RESTORE_ONE_LUA,
  DEAD_LETTER_ONE_LUA,
  RELEASE_MUTEX_LUA,
};

/** The key argument of every `redis.call` (all our commands take their key first). */
function keyArguments(script: string): string[] {
  return [...script.matchAll(/redis\.call\('\w+',\s*([^,)]+)/g)].map((match) => match[1] ?? '');
}

/** Locals assigned only from `KEYS[…]`, directly or through a table of them. */
function keyLocals(script: string): Set<string> {
  const locals = new Set<string>();
  for (const [, name, value] of script.matchAll(/local (\w+) = ([^\n]+)/g)) {
    const keysOnly = /^\{?[^{}]*\}?$/.test(value ?? '') && /KEYS\[/.test(value ?? '');
    if (keysOnly && !/ARGV|\.\./.test(value ?? '')) locals.add(name ?? '');
  }
  // `local list = lists[…] or KEYS[2]`: an entry of a KEYS-only table.
  for (const [, name, table] of script.matchAll(/local (\w+) = (\w+)\[[^\]]+\] or KEYS\[\d+\]/g)) {
    if (locals.has(table ?? '')) locals.add(name ?? '');
  }
  return locals;
}

describe('our Lua scripts', () => {
  it.each(Object.entries(SCRIPTS))('%s reaches keys through KEYS only', (_name, script) => {
    const locals = keyLocals(script);
    const keys = keyArguments(script);

    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(/^KEYS\[(\d+|i)\]$/.test(key) || locals.has(key), `key argument ${key}`).toBe(true);
    }
  });

  it('would notice a key name built from ARGV', () => {
    const built = "local key = ARGV[1] .. ':x'\nredis.call('DEL', key)";

    expect(keyLocals(built).has('key')).toBe(false);
    expect(keyArguments(built)).toEqual(['key']);
  });
});
