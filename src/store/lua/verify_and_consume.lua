-- verify_and_consume: compare the candidates with the pending digest; approve
-- once, or spend one guess (however many candidates) and lock the subject when
-- the budget is gone.
-- Rust twin: MemoryStore::verify_and_consume in src/store/memory/codes.rs (same rule; keep both in step).
-- KEYS[1]  the number's record (number_record.lua: code state and send log)
-- KEYS[2], KEYS[3]  (optional) the number's code hash and send log as kept
--          before issue 30, adopted and deleted (number_record.lua)
-- ARGV[1]  max attempts
-- ARGV[2..] candidate digests (their first 16 raw bytes): the code's digest
--          under each HMAC secret of the key ring, so a code sent before a
--          rotation verifies
-- Returns {'approved', sent_ms}, {'incorrect', attempts_remaining},
-- {'expired', 0} or {'locked', 0}; sent_ms is the newest send in the
-- number's log (the approved code's, ms; 0 if none is kept), which the
-- pumping guard counted that send at (count_prefix_send.lua's ARGV[10]), so
-- its approval finds the send by it (count_prefix_approval.lua).
local key, legacy_code, legacy_sends = KEYS[1], KEYS[2], KEYS[3]
local max_attempts = tonumber(ARGV[1])
local now = clock_ms()
local record = read_record(redis.call('GET', key), now)
adopt_legacy(key, record, legacy_code, legacy_sends, now)

if record.state == 3 then
  return {'locked', 0}
end
if record.state ~= 1 then
  return {'expired', 0}
end
local stored = record.digest

-- Compare every byte and only then decide, so the time taken does not depend
-- on where the digests first differ. Lua's own `==` on strings is an
-- interpreter detail we do not want security to rest on. (The digests are
-- keyed HMACs, so even a leak would only reveal bits of a hash an attacker
-- cannot relate to a code; this keeps it that way by construction.)
-- Every candidate is compared in full, so the time taken does not say which
-- secret matched either.
local matched = false
for c = 2, #ARGV do
  local candidate = ARGV[c]
  local diff = 0
  if #stored ~= #candidate then
    diff = 1
  end
  for i = 1, #candidate do
    diff = bit.bor(diff, bit.bxor(string.byte(stored, i) or 0, string.byte(candidate, i)))
  end
  matched = matched or diff == 0
end

if matched then
  -- Ending the code state makes the code single-use and resets the budget;
  -- the number's send log stays.
  record.state, record.digest, record.attempts = 0, NO_DIGEST, 0
  save(key, record, 0)
  -- Newest, not last: adopted legacy sends are appended after newer ones.
  local sent, log = 0, record.log
  for at = 1, #log - 7, 8 do
    local time = struct.unpack('>I6', log, at)
    if time > sent then
      sent = time
    end
  end
  return {'approved', sent}
end

record.attempts = record.attempts + 1
local remaining = max_attempts - record.attempts
if remaining <= 0 then
  -- Destroy the code and lock until the code state ends.
  record.state, record.digest = 3, NO_DIGEST
  save(key, record, 0)
  return {'incorrect', 0}
end
save(key, record, 0)
return {'incorrect', remaining}
