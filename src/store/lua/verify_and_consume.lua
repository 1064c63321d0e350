-- verify_and_consume: compare the candidates with the pending digest; approve
-- once, or spend one guess (however many candidates) and lock the subject when
-- the budget is gone.
-- Rust twin: MemoryStore::verify_and_consume in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the subject's record (a hash: d = digest, a = attempts used, l = locked)
-- ARGV[1]  max attempts
-- ARGV[2..] candidate digests (raw bytes): the code's digest under each HMAC
--          secret of the key ring, so a code sent before a rotation verifies
-- Returns {'approved', 0}, {'incorrect', attempts_remaining}, {'expired', 0}
-- or {'locked', 0}.
local key = KEYS[1]
local max_attempts = tonumber(ARGV[1])

if redis.call('HEXISTS', key, 'l') == 1 then
  return {'locked', 0}
end
local stored = redis.call('HGET', key, 'd')
if not stored then
  return {'expired', 0}
end

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
  -- Deleting the whole record makes the code single-use and resets the budget.
  redis.call('DEL', key)
  return {'approved', 0}
end

local used = redis.call('HINCRBY', key, 'a', 1)
local remaining = max_attempts - used
if remaining <= 0 then
  -- Destroy the code and lock; HSET/HDEL keep the record's TTL, so the lock
  -- ends when the last code would have expired.
  redis.call('HDEL', key, 'd')
  redis.call('HSET', key, 'l', 1)
  return {'incorrect', 0}
end
return {'incorrect', remaining}
