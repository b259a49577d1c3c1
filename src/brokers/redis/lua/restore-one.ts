/**
 * Restore one stale `unacked` entry, compare-and-swap: only if the entry still holds the value
 * read (nobody acked or restored it meanwhile) is it removed from both indexes and its envelope,
 * now flagged redelivered, pushed back at the front of its list. kombu does the same under
 * WATCH/MULTI; a script makes it one step.
 *
 * KEYS[1] unacked hash · KEYS[2] unacked_index zset · KEYS[3] target list
 * ARGV[1] delivery_tag · ARGV[2] the entry as read · ARGV[3] the envelope to push
 * Returns 1 when restored, 0 when the entry had changed or gone.
 */
export const RESTORE_ONE_LUA = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[3])
return 1
`;

/**
 * Dead-letter one stale `unacked` entry that cannot be restored (not kombu's shape),
 * compare-and-swap like {@link RESTORE_ONE_LUA}.
 *
 * KEYS[1] unacked hash · KEYS[2] unacked_index zset · KEYS[3] dead-letter list
 * ARGV[1] delivery_tag · ARGV[2] the entry as read · ARGV[3] the dead-letter record
 * Returns 1 when moved, 0 when the entry had changed or gone.
 */
export const DEAD_LETTER_ONE_LUA = RESTORE_ONE_LUA.replace("'RPUSH'", "'LPUSH'");

/**
 * Release kombu's restore mutex only if we still own it (kombu's own compare-and-delete).
 *
 * KEYS[1] mutex key · ARGV[1] our token
 * Returns 1 when released.
 */
export const RELEASE_MUTEX_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;
