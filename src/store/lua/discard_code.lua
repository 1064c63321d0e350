-- discard_code: remove the pending digest only if it is still ARGV[1], so an
-- older send's rollback never removes a newer send's code. The spent guess
-- count stays (with its TTL).
-- Rust twin: MemoryStore::discard_code in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the subject's record (a hash: d = digest, a = attempts used, l = locked)
-- ARGV[1]  the digest to remove (raw bytes)
-- Returns 1 if removed, else 0.
local key = KEYS[1]
-- Plain equality is fine here: ARGV[1] is a digest this service just made,
-- not a guess from a caller.
if redis.call('HGET', key, 'd') == ARGV[1] then
  redis.call('HDEL', key, 'd')
  return 1
end
return 0
