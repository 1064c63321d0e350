-- layout_marker: when the compact layout (issue 30) first ran on this Redis
-- database, and whether records of an older version could exist then.
-- Written by the first call of this version that touches a number's record
-- (or a client's send log), read by every process once before its own
-- first such call (src/store/redis/legacy_adoption.rs); it never changes.
-- None can exist if the database held no key in an older version's names
-- (`<prefix>:{<32 hex>}:code`, `…:sends`, `…:client-sends`, and the first
-- compact layout's `<prefix>:c<16 raw bytes>`): known when
-- it holds at most SMALL keys (read by SCAN, cheap at that size); a larger
-- one is taken to hold some.
-- No Rust twin: the memory store has no older layout to adopt.
-- KEYS[1]  the marker, `<prefix>:layout` (a hash: since, legacy; no TTL)
-- ARGV[1]  the key prefix
-- Returns {since_ms, legacy (1 if old records could exist, else 0), now_ms},
-- times on Redis's clock.
local marker = KEYS[1]
local prefix = ARGV[1]
local SMALL = 1000
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local found = redis.call('HMGET', marker, 'since', 'legacy')
if found[1] and found[2] then
  return { tonumber(found[1]), tonumber(found[2]), now }
end

local head = prefix .. ':{'
local client_head = prefix .. ':c'
local function old_name(name)
  -- The first compact layout's client log: `<prefix>:c` + 16 raw bytes (a
  -- bucket of this layout is `<prefix>:c` + 2).
  if #name == #client_head + 16 and string.sub(name, 1, #client_head) == client_head then
    return true
  end
  if string.sub(name, 1, #head) ~= head then
    return false
  end
  local tag, kind = string.match(string.sub(name, #head + 1), '^(%x+)}:([%a-]+)$')
  return tag ~= nil and #tag == 32
    and (kind == 'code' or kind == 'sends' or kind == 'client-sends')
end

local legacy = 0
if redis.call('DBSIZE') > SMALL then
  legacy = 1
else
  local cursor = '0'
  repeat
    local page = redis.call('SCAN', cursor, 'COUNT', SMALL)
    cursor = page[1]
    for _, name in ipairs(page[2]) do
      if old_name(name) then
        legacy = 1
      end
    end
  until cursor == '0' or legacy == 1
end
redis.call('HSET', marker, 'since', string.format('%d', now), 'legacy', legacy)
return { now, legacy, now }
