import { describe, expect, it } from 'vitest';
import { RedisKeys } from '../../../../src/brokers/redis/keys.js';

const SEP = '\x06\x16';

describe('RedisKeys', () => {
  it.each([
    ['no prefix', ''],
    ["kombu's global_keyprefix", 'app:'],
  ])('names every key with %s in front', (_, prefix) => {
    // Prepare
    const keys = new RedisKeys(prefix);

    // Act
    const names = {
      unacked: keys.unacked,
      unackedIndex: keys.unackedIndex,
      unackedMutex: keys.unackedMutex,
      queueLists: keys.queueLists('events'),
      binding: keys.binding('events'),
      delayed: keys.delayed('events'),
      deadLetter: keys.deadLetter('events.dlq'),
      prefixed: keys.prefixed('anything'),
    };

    // Assess
    expect(names).toEqual({
      unacked: `${prefix}unacked`,
      unackedIndex: `${prefix}unacked_index`,
      unackedMutex: `${prefix}unacked_mutex`,
      queueLists: [
        `${prefix}events`,
        `${prefix}events${SEP}3`,
        `${prefix}events${SEP}6`,
        `${prefix}events${SEP}9`,
      ],
      binding: { key: `${prefix}_kombu.binding.events`, member: `events${SEP}${SEP}events` },
      delayed: `${prefix}_sc.delayed${SEP}events`,
      deadLetter: `${prefix}_sc.dead${SEP}events.dlq`,
      prefixed: `${prefix}anything`,
    });
  });
});
