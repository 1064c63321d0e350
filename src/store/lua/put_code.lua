-- put_code: make ARGV[1] the pending digest, keeping the wrong guesses spent.
-- Rust twin: MemoryStore::put_code in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the subject's record (a hash: d = digest, a = attempts used, l = locked)
-- ARGV[1]  digest (raw bytes)
-- ARGV[2]  code lifetime in milliseconds (TTL + grace)
-- ARGV[3]  max attempts
-- Returns {'stored', attempts_remaining} or {'locked', retry_after_ms}.
local key = KEYS[1]
local lifetime_ms = tonumber(ARGV[2])
local max_attempts = tonumber(ARGV[3])

local ttl = redis.call('PTTL', key)
if ttl == -2 then
  redis.call('HSET', key, 'd', ARGV[1], 'a', 0)
  redis.call('PEXPIRE', key, lifetime_ms)
  return {'stored', max_attempts}
end
if ttl == -1 then
  -- Every write here sets a TTL, so this is a record someone else wrote;
  -- give it one rather than keep state forever.
  redis.call('PEXPIRE', key, lifetime_ms)
  ttl = lifetime_ms
end

local used = tonumber(redis.call('HGET', key, 'a') or '0') or 0
if redis.call('HEXISTS', key, 'l') == 1 or used >= max_attempts then
  return {'locked', ttl}
end

redis.call('HSET', key, 'd', ARGV[1])
-- Never shorten a record's life: the spent guess count must last at least as
-- long as the code it was spent on (same rule as the in-memory store).
if ttl < lifetime_ms then
  redis.call('PEXPIRE', key, lifetime_ms)
end
return {'stored', max_attempts - used}
