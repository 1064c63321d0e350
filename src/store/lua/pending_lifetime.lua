-- pending_lifetime: milliseconds left on a code that can be verified now.
-- Rust twin: MemoryStore::pending_lifetime in src/store/memory/codes.rs (same rule; keep both in step).
-- KEYS[1]  the number's record (number_record.lua: code state and send log)
-- Returns the ms until the code state ends, or -1 when no code can be verified.
local key = KEYS[1]
local now = clock_ms()
local record = read_record(redis.call('GET', key), now)
if record.state ~= 1 then
  return -1
end
return record.ends - now
