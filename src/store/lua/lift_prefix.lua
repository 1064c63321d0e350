-- lift_prefix: an operator's lift of a prefix's suspension, optionally with
-- an exemption (the admin API). The sends so far are never judged again
-- (kept as evidence until they leave the window). Ending an exemption when
-- none is in force changes nothing (a suspension stays).
-- Rust twin: PrefixWindow::lift / PrefixWindow::exempt in src/store/prefix_window.rs.
-- KEYS[1]  the suspension   KEYS[2]  the exemption   KEYS[3]  judged-up-to
--          (as in count_prefix_send.lua; one hash tag)
-- ARGV[1]  exemption: -1 leaves it as it is, 0 ends it, > 0 sets it for that many ms
-- ARGV[2]  window_ms: how long judged-up-to matters
-- Returns {was_suspended, was_exempt}, each 1 or 0.
local suspension, exempt, since = KEYS[1], KEYS[2], KEYS[3]
local exempt_ms = tonumber(ARGV[1])
local was_exempt = redis.call('EXISTS', exempt)
if exempt_ms == 0 and was_exempt == 0 then
  return { 0, 0 }
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local was_suspended = 0
if redis.call('PTTL', suspension) > 0 then
  was_suspended = 1
end
redis.call('DEL', suspension)
redis.call('SET', since, now, 'PX', tonumber(ARGV[2]))
if exempt_ms == 0 then
  redis.call('DEL', exempt)
elseif exempt_ms > 0 then
  redis.call('SET', exempt, '1', 'PX', exempt_ms)
end
return { was_suspended, was_exempt }
