-- put_code: make ARGV[1] the pending digest, keeping the wrong guesses spent.
-- Rust twin: MemoryStore::put_code in src/store/memory/codes.rs (same rule; keep both in step).
-- KEYS[1]  the number's record (number_record.lua: code state and send log)
-- KEYS[2], KEYS[3]  (optional) the number's code hash and send log as kept
--          before issue 30, adopted and deleted (number_record.lua)
-- ARGV[1]  digest (its first 16 raw bytes)
-- ARGV[2]  code lifetime in milliseconds (TTL + grace)
-- ARGV[3]  max attempts
-- Returns {'stored', attempts_remaining} or {'locked', retry_after_ms}.
local key, legacy_code, legacy_sends = KEYS[1], KEYS[2], KEYS[3]
local lifetime_ms = tonumber(ARGV[2])
local max_attempts = tonumber(ARGV[3])
local now = clock_ms()
local record = read_record(redis.call('GET', key), now)
adopt_legacy(key, record, legacy_code, legacy_sends, now)

if record.state == 0 then
  record.state, record.digest, record.attempts, record.ends = 1, ARGV[1], 0, now + lifetime_ms
  save(key, record, lifetime_ms)
  return {'stored', max_attempts}
end
local locked_for = lock_left(record, max_attempts, now)
if locked_for then
  return {'locked', locked_for}
end
record.state, record.digest = 1, ARGV[1]
-- Never shorten a code state's life: the spent guess count must last at
-- least as long as the code it was spent on (same rule as the memory store).
if record.ends < now + lifetime_ms then
  record.ends = now + lifetime_ms
end
save(key, record, record.ends - now)
return {'stored', max_attempts - record.attempts}
