-- reserve_spend: reserve a send's estimated price in every spend window of
-- one decision (the service's hour and day, one caller's day), or in none
-- when any would cross its limit. A window is 60 buckets of period/60 ms
-- (rounded up) plus the current one: an amount counts until its bucket + 61
-- begins. Each window is a hash: field <bucket index> = amount in
-- millionths of the currency, `t` = the total of the kept buckets, `o` = a
-- lower bound of their indexes; so a send reads two fields, and the buckets
-- are only listed when one may have left the window (at most once a
-- bucket's width) or to say when a refused amount would fit. Every key
-- shares the `{spend}` hash tag (one slot).
-- Rust twin: MemoryStore::reserve_spend (src/store/memory/spend.rs), which
-- runs src/store/spend_window.rs (same rule; keep both in step).
-- Also a step of count_send_and_put_code.lua (wrapped unchanged as a local
-- function on the keys the driver hands it), so a capped send on one server
-- or Sentinel is one EVALSHA; a Cluster runs this script on its own.
-- KEYS[i]  window i's hash
-- ARGV[1]  the amount to reserve (an integer)
-- ARGV[2i], ARGV[2i+1]  window i's limit and period (ms)
-- Returns {'reserved', bucket_1, bucket_2, ...} or
--         {'refused', window_index, retry_after_ms, ...} (0-based indexes).
local BUCKETS = 60
-- Redis's clock, not the caller's: every replica then agrees on time.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local amount = tonumber(ARGV[1])

-- Window i's kept buckets as {index, amount}, oldest first; forgets those
-- before `oldest` and rewrites `t` and `o`.
local function kept_buckets(i, oldest)
  local fields = redis.call('HGETALL', KEYS[i])
  local live = {}
  local total = 0
  for f = 1, #fields, 2 do
    local name = fields[f]
    if name ~= 't' and name ~= 'o' then
      local bucket = tonumber(name)
      if bucket < oldest then
        redis.call('HDEL', KEYS[i], name)
      else
        total = total + tonumber(fields[f + 1])
        live[#live + 1] = { bucket, tonumber(fields[f + 1]) }
      end
    end
  end
  table.sort(live, function(a, b) return a[1] < b[1] end)
  local low = oldest
  if #live > 0 then
    low = live[1][1]
  end
  redis.call('HSET', KEYS[i], 't', string.format('%d', total), 'o', string.format('%d', low))
  return live, total
end

local refused = { 'refused' }
local current = {}
local fresh = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local width = math.max(1, math.ceil(tonumber(ARGV[2 * i + 1]) / BUCKETS))
  local bucket_now = math.floor(now / width)
  local oldest = bucket_now - BUCKETS
  local state = redis.call('HMGET', KEYS[i], 't', 'o')
  local total = tonumber(state[1]) or 0
  local low = tonumber(state[2])
  fresh[i] = low == nil
  if low ~= nil and low < oldest then
    local _
    _, total = kept_buckets(i, oldest)
  end
  current[i] = bucket_now
  if total + amount > limit then
    local wait = width * (BUCKETS + 1)
    if amount <= limit then
      local live
      live, total = kept_buckets(i, oldest)
      local excess = total + amount - limit
      local freed = 0
      for _, entry in ipairs(live) do
        freed = freed + entry[2]
        if freed >= excess then
          wait = (entry[1] + BUCKETS + 1) * width - now
          break
        end
      end
    end
    refused[#refused + 1] = i - 1
    refused[#refused + 1] = wait
  end
end
if #refused > 1 then
  return refused
end

local reserved = { 'reserved' }
for i = 1, #KEYS do
  local width = math.max(1, math.ceil(tonumber(ARGV[2 * i + 1]) / BUCKETS))
  local bucket = string.format('%d', current[i])
  local spent = redis.call('HINCRBY', KEYS[i], bucket, ARGV[1])
  redis.call('HINCRBY', KEYS[i], 't', ARGV[1])
  if fresh[i] then
    redis.call('HSET', KEYS[i], 'o', bucket)
  end
  -- Once per bucket (its first amount): the key then outlives the bucket's
  -- last counting moment, (bucket + 61) * width.
  if spent == amount then
    redis.call('PEXPIRE', KEYS[i], width * (BUCKETS + 2))
  end
  reserved[#reserved + 1] = current[i]
end
return reserved
