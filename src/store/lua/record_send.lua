-- record_send: count one send in a sliding-log rate limit, or refuse it and
-- count nothing. The same algorithm as src/store/sliding_log.rs: a send is
-- admitted only if, for every rule, fewer than `limit` sends fall in the last
-- `period` ms. Each send is a sorted-set member scored by its time, which is
-- what makes the reported retry delay exact.
-- Rust twin: MemoryStore::record_send in src/store/memory.rs, which runs
-- sliding_log::record (same rule; keep both in step).
-- KEYS[1]  the send log (a sorted set: member = token, score = send time in ms)
-- ARGV[1]  token for this send (random; used to refund it)
-- ARGV[2k], ARGV[2k+1]  limit and period (ms) of rule k (k = 1, 2, ...)
-- Returns {'admitted', next_allowed_in_ms} or
--         {'refused', rule_index, retry_after_ms, rule_index, retry_after_ms, ...}
--         (rule indexes 0-based, in ARGV order).
local key = KEYS[1]
-- Redis's clock, not the caller's: every replica then agrees on time.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local rules = {}
local longest = 0
for i = 2, #ARGV, 2 do
  local period = tonumber(ARGV[i + 1])
  rules[#rules + 1] = { limit = tonumber(ARGV[i]), period = period }
  if period > longest then
    longest = period
  end
end

redis.call('ZREMRANGEBYSCORE', key, '-inf', now - longest)

-- Time until `rule` has room for one more send, or -1 if it has room now.
-- With `extra`, a send at `now` is counted as if already added.
local function wait_for_room(rule, extra)
  local window_start = '(' .. (now - rule.period)
  local existing = redis.call('ZCOUNT', key, window_start, '+inf')
  local count = existing
  if extra then
    count = count + 1
  end
  if count < rule.limit then
    return -1
  end
  local leaving_index = count - rule.limit
  local leaving_at = now
  if leaving_index < existing then
    local entry = redis.call('ZRANGEBYSCORE', key, window_start, '+inf', 'WITHSCORES', 'LIMIT', leaving_index, 1)
    leaving_at = tonumber(entry[2])
  end
  return leaving_at + rule.period - now
end

local refused = { 'refused' }
for index, rule in ipairs(rules) do
  local wait = wait_for_room(rule, false)
  if wait >= 0 then
    refused[#refused + 1] = index - 1
    refused[#refused + 1] = wait
  end
end
if #refused > 1 then
  return refused
end

local next_allowed = 0
for _, rule in ipairs(rules) do
  local wait = wait_for_room(rule, true)
  if wait > next_allowed then
    next_allowed = wait
  end
end
redis.call('ZADD', key, now, ARGV[1])
redis.call('PEXPIRE', key, longest)
return { 'admitted', next_allowed }
