-- cancel_code: remove the pending digest whatever it is (CancelOtp). The spent
-- guess count and any lock stay, until the code state ends.
-- Rust twin: MemoryStore::cancel_code in src/store/memory/codes.rs (same rule; keep both in step).
-- KEYS[1]  the number's record (number_record.lua: code state and send log)
-- Returns 1 if a code was pending, else 0.
local key = KEYS[1]
local now = clock_ms()
local record = read_record(redis.call('GET', key), now)
if record.state ~= 1 then
  return 0
end
record.state, record.digest = 2, NO_DIGEST
save(key, record, 0)
return 1
