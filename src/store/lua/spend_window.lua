-- spend_window: the one definition of a spend window's hash, run before
-- reserve_spend.lua and refund_spend.lua (src/store/redis/scripts.rs).
-- A window is 60 buckets of period/60 ms (rounded up; the caller hands the
-- width) plus the current one:
-- an amount counts until its bucket + 61 begins (src/store/spend_window.rs,
-- the Rust twin of the rule). Its hash, `<prefix>:{spend}:v2:<ledger>:<period>`:
--   n<k>  the current bucket k, holding the window's running total (every
--         kept bucket's amount, k's own included)
--   b     the part of n<k> the older kept buckets hold (k's own: n<k> - b)
--   <j>   an older kept bucket j's own amount
-- The version before kept `t` (the total) and `<k>` for the current bucket
-- too, under the same name without `v2:` (two HINCRBYs a window per send);
-- a window new in this layout takes that hash's kept buckets over once.
local BUCKETS = 60

-- Window i's kept buckets at bucket k (those from k - BUCKETS on) as
-- {bucket = own amount}, read from its hash (KEYS[i]), and whether the hash
-- was written in this layout before (it has `b`); `current_own`, when
-- given, is n<k>'s own amount (then n<k> is the bucket just opened).
local function window_amounts(i, k, current_own)
  local oldest = k - BUCKETS
  local fields = redis.call('HGETALL', KEYS[i])
  local base = 0
  local laid_out = false
  for f = 1, #fields, 2 do
    if fields[f] == 'b' then
      base = fields[f + 1] + 0
      laid_out = true
    end
  end
  local amounts = {}
  for f = 1, #fields, 2 do
    local name = fields[f]
    local own
    local bucket
    if string.sub(name, 1, 1) == 'n' then
      bucket = tonumber(string.sub(name, 2))
      own = fields[f + 1] - base
      if bucket == k and current_own then
        own = current_own
      end
    elseif name ~= 'b' then
      bucket = tonumber(name)
      own = fields[f + 1] + 0
    end
    if bucket and bucket >= oldest and own > 0 then
      amounts[bucket] = (amounts[bucket] or 0) + own
    end
  end
  return amounts, laid_out
end

-- The first amount of bucket k in window i (n<k> was just created holding
-- `own`): older buckets may have left the window, so the hash is rewritten
-- from its kept buckets, n<k> = b + own. A hash new in this layout first
-- takes over the previous layout's (KEYS[i + windows], if handed) kept
-- buckets.
-- Returns the window's total.
local function roll_window(i, windows, k, width, own)
  local amounts, laid_out = window_amounts(i, k, own)
  if not laid_out and KEYS[i + windows] then
    local old = redis.call('HGETALL', KEYS[i + windows])
    for f = 1, #old, 2 do
      local bucket = tonumber(old[f])
      if bucket and bucket >= k - BUCKETS then
        amounts[bucket] = (amounts[bucket] or 0) + old[f + 1]
      end
    end
  end
  local fields = {}
  local base = 0
  for bucket, amount in pairs(amounts) do
    if bucket ~= k then
      base = base + amount
      fields[#fields + 1] = string.format('%d', bucket)
      fields[#fields + 1] = string.format('%d', amount)
    end
  end
  local total = base + (amounts[k] or 0)
  redis.call('DEL', KEYS[i])
  redis.call('HSET', KEYS[i], 'b', string.format('%d', base),
    string.format('n%d', k), string.format('%d', total), unpack(fields))
  -- The key then outlives the bucket's last counting moment, (k + 61) * width.
  redis.call('PEXPIRE', KEYS[i], width * (BUCKETS + 2))
  return total
end

-- Time (ms) until enough of window i's spend has left it for `amount` to
-- fit under `limit`, at bucket k (width ms) and `now` (ms): the whole
-- window when the amount alone is over the limit.
local function room_in(i, k, width, amount, limit, now)
  if amount > limit then
    return width * (BUCKETS + 1)
  end
  local amounts = window_amounts(i, k)
  local live = {}
  local total = 0
  for bucket, own in pairs(amounts) do
    live[#live + 1] = { bucket, own }
    total = total + own
  end
  table.sort(live, function(a, b) return a[1] < b[1] end)
  local excess = total + amount - limit
  local freed = 0
  for _, entry in ipairs(live) do
    freed = freed + entry[2]
    if freed >= excess then
      return (entry[1] + BUCKETS + 1) * width - now
    end
  end
  return width * (BUCKETS + 1)
end
