-- pending_lifetime: milliseconds left on a code that can be verified now.
-- Rust twin: MemoryStore::pending_lifetime in src/store/memory/codes.rs (same rule; keep both in step).
-- KEYS[1]  the number's record (number_record.lua: code state and send log)
-- KEYS[2], KEYS[3]  (optional) the number's code hash and send log as kept
--          before issue 30, adopted and deleted (number_record.lua)
-- Returns the ms until the code state ends, or -1 when no code can be verified.
local key, legacy_code, legacy_sends = KEYS[1], KEYS[2], KEYS[3]
local now = clock_ms()
local record = read_record(redis.call('GET', key), now)
adopt_legacy(key, record, legacy_code, legacy_sends, now)
if record.state ~= 1 then
  return -1
end
return record.ends - now
