-- prefix_counts: a prefix's counts as a verdict now would read them, for the
-- admin API's list of suspended prefixes. Reads only.
-- Rust twin: PrefixWindow::counts in src/store/prefix_window.rs.
-- KEYS[1]  unapproved sends   KEYS[2]  approved sends   KEYS[3]  the suspension
--          (as in count_prefix_send.lua; one hash tag)
-- ARGV[1]  judge_after_ms
-- Returns {judged, approved, lift_in_ms (<= 0: not suspended)}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local judged_before = now - tonumber(ARGV[1])
local unapproved = redis.call('ZCOUNT', KEYS[1], '-inf', judged_before)
local approvals = redis.call('ZCOUNT', KEYS[2], '-inf', judged_before)
return { unapproved + approvals, approvals, redis.call('PTTL', KEYS[3]) }
