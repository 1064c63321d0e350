-- complete_idempotency: record the first call's response for retries, only
-- if that call still owns the claim. A call whose claim expired (the key was
-- claimed again, or is gone) must not write over another call's record.
-- Rust twin: MemoryStore::complete_idempotency in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the key's record (a hash: s = subject, o = owner, r = response)
-- ARGV[1]  owner token, ARGV[2] encoded response, ARGV[3] TTL in ms
-- Returns 1 if recorded, 0 if the claim is not the caller's (anymore).
local key = KEYS[1]
if redis.call('HGET', key, 'o') ~= ARGV[1] or redis.call('HEXISTS', key, 'r') == 1 then
  return 0
end
redis.call('HSET', key, 'r', ARGV[2])
redis.call('PEXPIRE', key, tonumber(ARGV[3]))
return 1
