-- discard_code: remove the pending digest only if it is still ARGV[1], so an
-- older send's rollback never removes a newer send's code. The spent guess
-- count stays (until the code state ends).
-- Rust twin: MemoryStore::discard_code in src/store/memory/codes.rs (same rule; keep both in step).
-- KEYS[1]  the number's record (number_record.lua: code state and send log)
-- KEYS[2], KEYS[3]  (optional) the number's code hash and send log as kept
--          before issue 30, adopted and deleted (number_record.lua)
-- ARGV[1]  the digest to remove (its first 16 raw bytes)
-- Returns 1 if removed, else 0.
local key, legacy_code, legacy_sends = KEYS[1], KEYS[2], KEYS[3]
local now = clock_ms()
local record = read_record(redis.call('GET', key), now)
adopt_legacy(key, record, legacy_code, legacy_sends, now)
-- Plain equality is fine here: ARGV[1] is a digest this service just made,
-- not a guess from a caller.
if record.state == 1 and record.digest == ARGV[1] then
  record.state, record.digest = 2, NO_DIGEST
  save(key, record, 0)
  return 1
end
return 0
