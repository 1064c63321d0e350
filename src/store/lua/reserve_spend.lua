-- reserve_spend: reserve a send's estimated price in every spend window of
-- one decision (the service's hour and day, one caller's day), or in none
-- when any would cross its limit. Runs after spend_window.lua (the
-- window's hash and its upkeep). Every key shares the `{spend}` hash tag.
-- The common reservation is one HINCRBY per window: on the current bucket's
-- n<k> it adds the amount and answers the window's total at once (an
-- integer: nothing to parse). A reply equal to the amount means n<k> did
-- not exist: a new bucket began and older ones may have left the window,
-- so the window is rolled (once per bucket and window). An amount that
-- would cross a limit is taken out of every window again.
-- Rust twin: MemoryStore::reserve_spend (src/store/memory/spend.rs), which
-- runs src/store/spend_window.rs (same rule; keep both in step).
-- Also a step of count_send_and_put_code.lua (wrapped unchanged as a local
-- function on the keys the driver hands it), so a capped send on one server
-- or Sentinel is one EVALSHA; a Cluster runs this script on its own.
-- KEYS[i]      window i's hash (w windows: as many as limit, width pairs)
-- KEYS[w + i]  optional: the same window's hash in the previous layout, to
--              take its spend over if window i's hash is new (the caller
--              hands these until it has seen every window in this layout)
-- ARGV[1]  the amount to reserve (an integer, millionths of the currency)
-- ARGV[2i], ARGV[2i+1]  window i's limit and bucket width (ms: the period
--             over 60, rounded up, at least 1; src/store/spend_window.rs)
-- ARGV[2w+2]  optional: Redis's time in ms, read earlier in the same call
--             (the one-call send script passes it; otherwise TIME is read)
-- Returns {'reserved', now_ms} (window i's bucket is now_ms divided by its
--         width: the caller derives the buckets, a reply element costs more
--         than the division) or
--         {'refused', window_index, retry_after_ms, ...} (0-based indexes).
-- `x + 0` turns an argument into a number with one conversion (Lua 5.1's
-- tonumber makes two): this runs on every priced send.
local windows = math.floor((#ARGV - 1) / 2)
local now = ARGV[2 * windows + 2]
if now ~= nil then
  -- A number when the send script hands it (no conversion then), but
  -- replied as an integer whichever way it came.
  now = now + 0
else
  -- Redis's clock, not the caller's: every replica then agrees on time.
  local time = redis.call('TIME')
  now = time[1] * 1000 + math.floor(time[2] / 1000)
end
local amount = ARGV[1] + 0

-- Window i's bucket width (ms) and current bucket.
local function bucket_of(i)
  local width = ARGV[2 * i + 1] + 0
  return width, math.floor(now / width)
end

local over = nil
for i = 1, windows do
  local width, bucket = bucket_of(i)
  local total = redis.call('HINCRBY', KEYS[i], string.format('n%d', bucket), ARGV[1])
  if total == amount then
    total = roll_window(i, windows, bucket, width, amount)
  end
  if total > ARGV[2 * i] + 0 then
    over = over or {}
    over[#over + 1] = i
  end
end

if not over then
  return { 'reserved', now }
end

-- Some window would cross its limit: the amount leaves every window again,
-- then each refusing one says when enough of its spend will have left it.
for i = 1, windows do
  local _, bucket = bucket_of(i)
  redis.call('HINCRBY', KEYS[i], string.format('n%d', bucket), -amount)
end
local refused = { 'refused' }
for _, i in ipairs(over) do
  local width, bucket = bucket_of(i)
  refused[#refused + 1] = i - 1
  refused[#refused + 1] = room_in(i, bucket, width, amount, ARGV[2 * i] + 0, now)
end
return refused
