-- refund_send: take back a counted send (it did not happen after all).
-- Rust twin: MemoryStore::refund_send in src/store/memory.rs (same rule; keep both in step).
-- KEYS[1]  the send log (sorted set)
-- ARGV[1]  the token the send was counted with
-- Returns 1 if it was removed, else 0.
return redis.call('ZREM', KEYS[1], ARGV[1])
