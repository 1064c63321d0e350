-- count_prefix_send: the pumping guard's one decision for a send to a
-- destination prefix.
-- Rust twin: MemoryStore::count_prefix_send in src/store/memory.rs, through
-- PrefixWindow::count_send in src/store/prefix_window.rs (same rule; keep them
-- in step). Refuse while the prefix is suspended; suspend
-- it, forgetting its counts so it starts afresh when the suspension lifts,
-- when at least min_sends sends are old enough to judge (their codes can no
-- longer be approved) and the approvals are below min_approved_percent of
-- them; otherwise count the send.
-- KEYS[1]  the prefix's sends (sorted set: member = token, score = send time in ms)
-- KEYS[2]  the prefix's approvals (sorted set: member = random id, score = time in ms)
-- KEYS[3]  the prefix's suspension (a string that expires when it lifts)
--          All three carry the prefix as hash tag: one Redis Cluster slot.
-- ARGV[1]  token for this send (random; used to refund it)
-- ARGV[2]  window_ms     ARGV[3]  judge_after_ms      ARGV[4]  min_sends
-- ARGV[5]  min_approved_percent                       ARGV[6]  suspension_ms
-- Returns {'counted'}, {'suspended', lift_in_ms} or, when this call
-- suspended the prefix, {'suspended', lift_in_ms, judged, approved}.
local sends, approvals, suspension = KEYS[1], KEYS[2], KEYS[3]
-- Redis's clock, not the caller's: every replica then agrees on time.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[2])

local lift_in = redis.call('PTTL', suspension)
if lift_in > 0 then
  return { 'suspended', lift_in }
end

redis.call('ZREMRANGEBYSCORE', sends, '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', approvals, '-inf', now - window)
local judged = redis.call('ZCOUNT', sends, '-inf', now - tonumber(ARGV[3]))
local approved = redis.call('ZCARD', approvals)
if judged >= tonumber(ARGV[4]) and approved * 100 < tonumber(ARGV[5]) * judged then
  local suspension_ms = tonumber(ARGV[6])
  -- UNLINK, not DEL: a busy prefix's hour of sends is freed by Redis's
  -- background thread instead of inside this script, which Redis (every
  -- replica's calls) waits for. The keys are gone at once either way.
  redis.call('UNLINK', sends, approvals)
  redis.call('SET', suspension, '1', 'PX', suspension_ms)
  return { 'suspended', suspension_ms, judged, approved }
end

redis.call('ZADD', sends, now, ARGV[1])
redis.call('PEXPIRE', sends, window)
return { 'counted' }
