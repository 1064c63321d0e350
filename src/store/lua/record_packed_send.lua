-- record_packed_send: record_send.lua's sliding-log rate limit on a packed
-- log: a phone number's (inside its record, beside its code) or a
-- client_key's (a field of a bucket hash: number_record.lua). The same
-- rule, to the millisecond: a send is admitted only if, for every rule,
-- fewer than `limit` sends fall in the last `period` ms; a send's 8 bytes
-- replace a sorted-set member (issue 30).
-- Rust twin: MemoryStore::record_send in src/store/memory/send_logs.rs, which
-- runs sliding_log::record (same rule; keep all three in step).
-- KEYS[1]  the number's record or the client's bucket
-- KEYS[2], KEYS[3]  (optional) as kept before issue 30, adopted and deleted
--          (number_record.lua): a number's code hash and send log, or a
--          client's send log alone (then KEYS[2])
-- ARGV[1]  this send's nonce (0..65535; its refund token is `<time>:<nonce>`)
-- ARGV[2]  the client's field in its bucket; empty for a number's record
-- ARGV[2k+1], ARGV[2k+2]  limit and period (ms) of rule k (k = 1, 2, ...)
-- Returns {'admitted', next_allowed_in_ms, send_time_ms} or
--         {'refused', rule_index, retry_after_ms, rule_index, retry_after_ms, ...}
--         (rule indexes 0-based, in ARGV order).
local key, legacy_code, legacy_sends = KEYS[1], KEYS[2], KEYS[3]
if not legacy_sends then
  legacy_code, legacy_sends = nil, legacy_code
end
local now = clock_ms()
local record, store = open_log(key, ARGV[2], now)
adopt_legacy(key, record, legacy_code, legacy_sends, now, store)

local rules = {}
local longest = 0
for i = 3, #ARGV, 2 do
  local period = tonumber(ARGV[i + 1])
  rules[#rules + 1] = { limit = tonumber(ARGV[i]), period = period }
  if period > longest then
    longest = period
  end
end

-- Sends older than the longest rule go (record_send.lua's ZREMRANGEBYSCORE);
-- the rest, sorted by time whatever order they were counted in.
local kept = {}
local times = {}
for _, send in ipairs(send_times(record.log)) do
  if send.time > now - longest then
    kept[#kept + 1] = string.sub(record.log, send.at, send.at + 7)
    times[#times + 1] = send.time
  end
end
table.sort(times)

-- Time until `rule` has room for one more send, or -1 if it has room now.
-- With `extra`, a send at `now` is counted as if already added.
local function wait_for_room(rule, extra)
  local first = #times + 1
  for i, time in ipairs(times) do
    if time > now - rule.period then
      first = i
      break
    end
  end
  local existing = #times - first + 1
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
    leaving_at = times[first + leaving_index]
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
kept[#kept + 1] = struct.pack('>I6I2', now, tonumber(ARGV[1]))
record.log = table.concat(kept)
store(record, longest)
return { 'admitted', next_allowed, now }
