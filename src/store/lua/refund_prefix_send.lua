-- refund_prefix_send: take back a send counted for a destination prefix (it
-- did not happen after all): its entry in the prefix's log is marked
-- refunded (prefix_log.lua), or, for a send counted before issue 30, its
-- member leaves the sorted set. Only an unapproved send is taken back.
-- Rust twin: PrefixWindow::refund in src/store/prefix_window.rs (through
-- MemoryStore::refund_prefix_send; same rule, keep them in step).
-- KEYS[1]  unapproved sends as kept before issue 30 (count_prefix_send.lua)
-- KEYS[2]  the prefix's sends (prefix_log.lua); one hash tag
-- ARGV[1]  the send's token: 4 raw bytes, or a member of KEYS[1]
-- Returns 1 if it was taken back, else 0.
local sends, log = KEYS[1], KEYS[2]
local token = ARGV[1]
if #token ~= 4 then
  return redis.call('ZREM', sends, token)
end
local k, j, b, at = log_find(log, TOKEN_AT, token, -1)
if k and string.sub(b, at + STATE_AT - 1, at + STATE_AT - 1) == 'u' then
  log_mark(log, k, j, b, at, 'r')
  return 1
end
return 0
