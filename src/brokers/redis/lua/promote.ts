/**
 * Promote: move delayed envelopes that are due from a queue's delay zset back into its lists, at
 * the front (`RPUSH`: consumed next, since they are already due). Each zset member is the
 * priority step digit (`0`, `3`, `6`, `9`) followed by the envelope, so no JSON is parsed here.
 *
 * KEYS[1] delay zset · KEYS[2..5] the queue's lists for steps 0, 3, 6, 9
 * ARGV[1] now, unix ms · ARGV[2] most messages to move
 * Returns the number of envelopes moved.
 */
export const PROMOTE_LUA = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local lists = { ['0'] = KEYS[2], ['3'] = KEYS[3], ['6'] = KEYS[4], ['9'] = KEYS[5] }
for _, member in ipairs(due) do
  local list = lists[string.sub(member, 1, 1)] or KEYS[2]
  redis.call('RPUSH', list, string.sub(member, 2))
  redis.call('ZREM', KEYS[1], member)
end
return #due
`;
