-- refund_send: take back a counted send (it did not happen after all), from
-- a send log kept as a sorted set (a destination prefix's sends have their
-- own: refund_prefix_send.lua).
-- Rust twin: MemoryStore::refund_send in src/store/memory.rs (same rule;
-- keep them in step).
-- KEYS[1]  the sorted set the send was counted in
-- ARGV[1]  the token the send was counted with
-- Returns 1 if it was removed, else 0.
return redis.call('ZREM', KEYS[1], ARGV[1])
