-- claim_idempotency: of many concurrent calls with one idempotency key,
-- exactly one gets 'claimed'; the others learn whether it is still sending
-- or what it answered.
-- Rust twin: MemoryStore::claim_idempotency in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the key's record (a hash: s = subject, o = owner token of the
--          claiming call, r = recorded response)
-- ARGV[1]  subject (keyed hash of the phone number)
-- ARGV[2]  how long an unfinished claim lives, in ms
-- ARGV[3]  owner token: random, known only to the claiming call
-- Returns {'claimed'}, {'in_progress'}, {'completed', response} or {'other_subject'}.
local key = KEYS[1]
local subject = redis.call('HGET', key, 's')
if not subject then
  redis.call('HSET', key, 's', ARGV[1], 'o', ARGV[3])
  redis.call('PEXPIRE', key, tonumber(ARGV[2]))
  return { 'claimed' }
end
if subject ~= ARGV[1] then
  return { 'other_subject' }
end
local response = redis.call('HGET', key, 'r')
if response then
  return { 'completed', response }
end
return { 'in_progress' }
