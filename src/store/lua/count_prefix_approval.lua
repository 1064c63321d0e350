-- count_prefix_approval: the approval of the code last sent to one number
-- under a destination prefix (the pumping guard's evidence that real users
-- are behind it): that send, if still counted, becomes an approved one, and
-- the number is trusted (passes a suspension) for trust_ms.
-- Rust twin: MemoryStore::count_prefix_approval in src/store/memory/prefixes.rs,
-- through PrefixWindow::count_approval in src/store/prefix_window.rs (same rule).
-- KEYS[1]  unapproved sends   KEYS[2]  approved sends
-- KEYS[3]  each number's latest send   KEYS[4]  trusted numbers
-- KEYS[5]  the prefix's sends (prefix_log.lua)
--          (as in count_prefix_send.lua, the first three as kept before
--          issue 30; one hash tag)
-- ARGV[1]  the number's subject tag in hex (trusted numbers)
-- ARGV[2]  window_ms: how long the approved send is kept
-- ARGV[3]  trust_ms: how long the number is trusted (0: not at all)
-- ARGV[4]  the number's subject tag, raw (its latest send; in hex, ARGV[1],
--          as written before issue 30)
-- The number's latest send is its newest entry in the log; only when it
-- has none there, its latest send as kept before issue 30 (a send counted
-- by an older replica after a newer one's, during a rolling upgrade, is
-- not preferred to it).
-- Returns 1.
local sends, approved, latest, trusted = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local log = KEYS[5]
local subject = ARGV[1]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[2])
local trust_ms = tonumber(ARGV[3])

-- Sends that left the window are forgotten by the next send's decision
-- (count_prefix_send.lua), which judges only what is inside it.
if trust_ms > 0 then
  redis.call('ZREMRANGEBYSCORE', trusted, '-inf', now)
  redis.call('ZADD', trusted, now + trust_ms, subject)
  redis.call('PEXPIRE', trusted, trust_ms)
end

local k, j, b, at = log_find(log, SUBJECT_AT, ARGV[4], now - window)
if k then
  if string.sub(b, at + STATE_AT - 1, at + STATE_AT - 1) == 'u' then
    log_mark(log, k, j, b, at, 'a')
  end
  return 1
end

local field = ARGV[4]
local member = redis.call('HGET', latest, field)
if not member then
  field = subject
  member = redis.call('HGET', latest, field)
end
if member then
  redis.call('HDEL', latest, field)
  local sent = redis.call('ZSCORE', sends, member)
  if sent then
    -- The approved send keeps its token: 8 raw bytes, or the hex before ':'.
    local token = string.sub(member, 1, 8)
    if #member ~= 24 then
      token = string.match(member, '^[^:]*')
    end
    redis.call('ZREM', sends, member)
    redis.call('ZADD', approved, sent, token)
    redis.call('PEXPIRE', approved, window)
  end
end
return 1
