-- complete_idempotency: record the first call's response for retries.
-- Rust twin: MemoryStore::complete_idempotency in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the key's record (a hash: s = subject, r = recorded response)
-- ARGV[1]  subject, ARGV[2] encoded response, ARGV[3] TTL in ms
redis.call('HSET', KEYS[1], 's', ARGV[1], 'r', ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
