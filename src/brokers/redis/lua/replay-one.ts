/**
 * Replay one dead letter: remove exactly this record from the dead-letter list and, only if it
 * was still there, push the message to its queue, in one step (two operators replaying at once
 * cannot publish it twice).
 *
 * KEYS[1] dead-letter list · KEYS[2] the queue's list
 * ARGV[1] the dead-letter record as read · ARGV[2] the envelope to publish
 * Returns 1 when replayed, 0 when the record was gone.
 */
export const REPLAY_ONE_LUA = `
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
`;
