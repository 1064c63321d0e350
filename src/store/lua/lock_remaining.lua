-- lock_remaining: milliseconds until the number's wrong-guess lock ends (as
-- put_code would refuse a new code); changes nothing but a legacy adoption.
-- Rust twin: MemoryStore::lock_remaining in src/store/memory/codes.rs (same
-- rule, number_record.lua's lock_left; keep both in step).
-- KEYS[1]  the number's record (number_record.lua: code state and send log)
-- KEYS[2], KEYS[3]  (optional) the number's code hash and send log as kept
--          before issue 30, adopted and deleted (number_record.lua)
-- ARGV[1]  max attempts
-- Returns the ms until the lock ends, or -1 when the number is not locked.
local key, legacy_code, legacy_sends = KEYS[1], KEYS[2], KEYS[3]
local now = clock_ms()
local record = read_record(redis.call('GET', key), now)
adopt_legacy(key, record, legacy_code, legacy_sends, now)
return lock_left(record, tonumber(ARGV[1]), now) or -1
