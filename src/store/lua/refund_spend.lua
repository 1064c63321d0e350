-- refund_spend: give back an amount reserved by reserve_spend.lua (a send
-- that surely was not sent, or the part of the estimate the carrying
-- provider's price did not use), from the bucket each window counted it in,
-- if that bucket is still kept; never below zero. Runs after
-- spend_window.lua (the window's hash): the current bucket's own amount is
-- n<k> - b; an older bucket's amount is also in the current n<c> and in b.
-- Rust twin: MemoryStore::refund_spend (src/store/memory/spend.rs), which
-- runs spend_window::refund (same rule; keep both in step).
-- KEYS[i]  window i's hash (all in the `{spend}` hash tag)
-- ARGV[1]  the amount to give back (an integer)
-- ARGV[i + 1]  the bucket window i counted the reservation in
-- Returns the number of windows it was given back in.
local amount = ARGV[1] + 0
local given = 0
for i = 1, #KEYS do
  local bucket = ARGV[i + 1]
  local found = redis.call('HMGET', KEYS[i], 'n' .. bucket, bucket, 'b')
  local base = tonumber(found[3]) or 0
  if found[1] then
    local back = math.min(found[1] - base, amount)
    if back > 0 then
      redis.call('HINCRBY', KEYS[i], 'n' .. bucket, -back)
      given = given + 1
    end
  elseif found[2] then
    local back = math.min(found[2] + 0, amount)
    if back > 0 then
      if found[2] - back <= 0 then
        redis.call('HDEL', KEYS[i], bucket)
      else
        redis.call('HINCRBY', KEYS[i], bucket, -back)
      end
      -- The current bucket's running total and b hold it too.
      local fields = redis.call('HKEYS', KEYS[i])
      for _, name in ipairs(fields) do
        if string.sub(name, 1, 1) == 'n' then
          redis.call('HINCRBY', KEYS[i], name, -back)
        end
      end
      redis.call('HINCRBY', KEYS[i], 'b', -back)
      given = given + 1
    end
  end
end
return given
