-- release_idempotency: free a claim whose send failed, so a retry can send,
-- only if the caller still owns it: a call whose claim expired must not free
-- the claim of the call now sending. A completed record is kept: its response
-- is what retries must get.
-- Rust twin: MemoryStore::release_idempotency in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the key's record (a hash: s = subject, o = owner, r = response)
-- ARGV[1]  owner token
-- Returns 1 if released, else 0.
local key = KEYS[1]
if redis.call('HGET', key, 'o') == ARGV[1] and redis.call('HEXISTS', key, 'r') == 0 then
  return redis.call('DEL', key)
end
return 0
