-- cancel_code: remove the pending digest whatever it is (CancelOtp). The spent
-- guess count and any lock stay, with the record's TTL.
-- Rust twin: MemoryStore::cancel_code in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the subject's record (a hash: d = digest, a = attempts used, l = locked)
-- Returns 1 if a code was pending, else 0.
return redis.call('HDEL', KEYS[1], 'd')
