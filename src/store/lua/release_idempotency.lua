-- release_idempotency: free a claim whose send failed, so a retry can send.
-- A completed record is kept: its response is what retries must get.
-- Rust twin: MemoryStore::release_idempotency in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the key's record (a hash: s = subject, r = recorded response)
-- Returns 1 if released, else 0.
if redis.call('HEXISTS', KEYS[1], 'r') == 0 then
  return redis.call('DEL', KEYS[1])
end
return 0
