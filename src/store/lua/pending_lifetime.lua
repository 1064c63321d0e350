-- pending_lifetime: milliseconds left on a code that can be verified now.
-- Rust twin: MemoryStore::pending_lifetime in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the subject's record (a hash: d = digest, a = attempts used, l = locked)
-- Returns the record's PTTL, or -1 when no code can be verified.
local key = KEYS[1]
if redis.call('HEXISTS', key, 'd') == 0 or redis.call('HEXISTS', key, 'l') == 1 then
  return -1
end
return redis.call('PTTL', key)
