-- count_prefix_approval: count one approved code for a destination prefix
-- (the pumping guard's evidence that real users are behind it).
-- Rust twin: MemoryStore::count_prefix_approval in src/store/memory.rs, through
-- PrefixWindow::count_approval in src/store/prefix_window.rs (same rule).
-- KEYS[1]  the prefix's approvals (sorted set: member = random id, score = time in ms)
-- ARGV[1]  a random id for this approval
-- ARGV[2]  window_ms: approvals older than this are forgotten
-- Returns 1.
local key = KEYS[1]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
redis.call('ZADD', key, now, ARGV[1])
redis.call('PEXPIRE', key, window)
return 1
