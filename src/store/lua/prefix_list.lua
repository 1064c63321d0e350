-- prefix_list: a service-wide list of prefixes with an end time each (the
-- suspended ones, the exempt ones), for the admin API.
-- Rust twin: the memory store's suspension heap and exemption map
-- (src/store/memory/prefixes.rs).
-- KEYS[1]  sorted set: member = prefix, score = when it ends (ms)
-- ARGV[1]  'list'; or 'add' with ARGV[2] a prefix and ARGV[3] ms from now;
--          or 'remove' with ARGV[2] a prefix
-- Returns {now_ms, prefix, ends_at_ms, prefix, ends_at_ms, ...} (after the change).
local key = KEYS[1]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if ARGV[1] == 'add' then
  redis.call('ZADD', key, now + tonumber(ARGV[3]), ARGV[2])
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, last[2])
elseif ARGV[1] == 'remove' then
  redis.call('ZREM', key, ARGV[2])
end
local reply = { now }
for _, entry in ipairs(redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')) do
  reply[#reply + 1] = entry
end
return reply
