-- cancel_code: remove the pending digest whatever it is (CancelOtp). The spent
-- guess count and any lock stay, until the code state ends.
-- Rust twin: MemoryStore::cancel_code in src/store/memory/codes.rs (same rule; keep both in step).
-- KEYS[1]  the number's record (number_record.lua: code state and send log)
-- KEYS[2], KEYS[3]  (optional) the number's code hash and send log as kept
--          before issue 30, adopted and deleted (number_record.lua)
-- Returns 1 if a code was pending, else 0.
local key, legacy_code, legacy_sends = KEYS[1], KEYS[2], KEYS[3]
local now = clock_ms()
local record = read_record(redis.call('GET', key), now)
adopt_legacy(key, record, legacy_code, legacy_sends, now)
if record.state ~= 1 then
  return 0
end
record.state, record.digest = 2, NO_DIGEST
save(key, record, 0)
return 1
