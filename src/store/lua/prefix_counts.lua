-- prefix_counts: a prefix's counts as a verdict now would read them, for the
-- admin API's list of suspended prefixes: every send in the window old
-- enough to judge, the evidence of a suspension included. Reads only.
-- Rust twin: PrefixWindow::counts in src/store/prefix_window.rs.
-- KEYS[1]  unapproved sends   KEYS[2]  approved sends   KEYS[3]  the suspension
-- KEYS[4]  the prefix's sends (prefix_log.lua)
--          (as in count_prefix_send.lua, the first two as kept before
--          issue 30; one hash tag)
-- ARGV[1]  judge_after_ms   ARGV[2]  window_ms
-- Returns {judged, approved, lift_in_ms (<= 0: not suspended)}.
local sends, approved, suspension, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local judged_before = now - tonumber(ARGV[1])
local after = now - tonumber(ARGV[2])
local unapproved, approvals = log_counts(log, after, judged_before)
unapproved = unapproved + redis.call('ZCOUNT', sends, '(' .. after, judged_before)
approvals = approvals + redis.call('ZCOUNT', approved, '(' .. after, judged_before)
return { unapproved + approvals, approvals, redis.call('PTTL', suspension) }
