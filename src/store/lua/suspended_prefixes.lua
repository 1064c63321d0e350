-- suspended_prefixes: the service-wide list of suspended destination
-- prefixes, behind the otp_pumping_suspended_prefixes gauge. Each prefix's
-- own keys live in its own slot, so the list is a key of its own, written
-- after the decision.
-- Rust twin: MemoryStore::suspended_prefixes in src/store/memory.rs, which
-- counts the suspensions themselves (every prefix is in one map there).
-- KEYS[1]  sorted set: member = prefix, score = when its suspension lifts (ms)
-- ARGV[1], ARGV[2]  (optional) a prefix just suspended, and its lift_in_ms
-- Returns how many prefixes are suspended now.
local key = KEYS[1]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if ARGV[1] then
  redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[1])
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, last[2])
end
return redis.call('ZCARD', key)
