/**
 * Receive: pop up to ARGV[2] envelopes from a queue's lists and record each in kombu's `unacked`
 * hash and `unacked_index` zset in the same atomic step, so that a consumer dying between the pop
 * and the record cannot lose a message (kombu's own BRPOP + MULTI can).
 *
 * An envelope that is not a JSON object, or lacks `properties.delivery_tag` / `delivery_info`
 * (fields a Celery 5.2 worker crashes on), cannot be held the kombu way: it is moved to the
 * dead-letter list on the spot, with the reason.
 *
 * KEYS[1] unacked hash · KEYS[2] unacked_index zset · KEYS[3] dead-letter list ·
 * KEYS[4..n] the queue's lists in drain order
 * ARGV[1] now, unix seconds · ARGV[2] most messages to take · ARGV[3] queue name · ARGV[4] now, ISO 8601
 * Returns a flat array of triples: `'m', delivery_tag, envelope` per message held, and
 * `'d', '', reason` per envelope dead-lettered.
 */
export const RECEIVE_LUA = `
local out = {}
local left = tonumber(ARGV[2])
for i = 4, #KEYS do
  if left <= 0 then break end
  local popped = redis.call('RPOP', KEYS[i], left)
  if popped then
    for _, raw in ipairs(popped) do
      left = left - 1
      local ok, envelope = pcall(cjson.decode, raw)
      local properties = ok and type(envelope) == 'table' and envelope.properties or nil
      local tag = type(properties) == 'table' and properties.delivery_tag or nil
      local info = type(properties) == 'table' and properties.delivery_info or nil
      if type(tag) == 'string' and tag ~= '' and type(info) == 'table' then
        local exchange = type(info.exchange) == 'string' and info.exchange or ''
        local routing_key = type(info.routing_key) == 'string' and info.routing_key or ARGV[3]
        redis.call('HSET', KEYS[1], tag,
          '[' .. raw .. ', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(routing_key) .. ']')
        redis.call('ZADD', KEYS[2], ARGV[1], tag)
        out[#out + 1] = 'm'
        out[#out + 1] = tag
        out[#out + 1] = raw
      else
        local detail
        if not ok or type(envelope) ~= 'table' then
          detail = 'envelope is not a JSON object'
        else
          detail = 'envelope lacks properties.delivery_tag or properties.delivery_info'
        end
        redis.call('LPUSH', KEYS[3], cjson.encode({
          reason = 'invalid-message', detail = detail, queue = ARGV[3], at = ARGV[4], raw = raw,
          task = cjson.null, id = cjson.null, retries = cjson.null }))
        out[#out + 1] = 'd'
        out[#out + 1] = ''
        out[#out + 1] = detail
      end
    end
  end
end
return out
`;
