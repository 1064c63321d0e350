-- refund_spend: give back an amount reserved by reserve_spend.lua (a send
-- that surely was not sent, or the part of the estimate the carrying
-- provider's price did not use), from the bucket each window counted it in,
-- if that bucket is still kept; never below zero. Keeps the window's total
-- (`t`) in step.
-- Rust twin: MemoryStore::refund_spend (src/store/memory/spend.rs), which
-- runs spend_window::refund (same rule; keep both in step).
-- KEYS[i]  window i's hash (all in the `{spend}` hash tag)
-- ARGV[1]  the amount to give back (an integer)
-- ARGV[i + 1]  the bucket window i counted the reservation in
-- Returns the number of windows it was given back in.
local amount = tonumber(ARGV[1])
local given = 0
for i = 1, #KEYS do
  local spent = tonumber(redis.call('HGET', KEYS[i], ARGV[i + 1]))
  if spent then
    local back = math.min(spent, amount)
    if spent <= amount then
      redis.call('HDEL', KEYS[i], ARGV[i + 1])
    else
      redis.call('HINCRBY', KEYS[i], ARGV[i + 1], '-' .. ARGV[1])
    end
    local total = tonumber(redis.call('HGET', KEYS[i], 't')) or 0
    redis.call('HSET', KEYS[i], 't', string.format('%d', math.max(0, total - back)))
    given = given + 1
  end
end
return given
