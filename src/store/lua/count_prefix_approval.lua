-- count_prefix_approval: the approval of the code last sent to one number
-- under a destination prefix (the pumping guard's evidence that real users
-- are behind it): that send, if still counted, becomes an approved one, and
-- the number is trusted (passes a suspension) for trust_ms.
-- Rust twin: MemoryStore::count_prefix_approval in src/store/memory/prefixes.rs,
-- through PrefixWindow::count_approval in src/store/prefix_window.rs (same rule).
-- KEYS[1]  unapproved sends   KEYS[2]  approved sends
-- KEYS[3]  each number's latest send, as versions up to `5022918` wrote it
--          KEYS[4]  trusted numbers (as in count_prefix_send.lua; one hash tag)
-- ARGV[1]  the number's subject tag in hex (trusted numbers)
-- ARGV[2]  window_ms: how long the approved send is kept
-- ARGV[3]  trust_ms: how long the number is trusted (0: not at all)
-- ARGV[4]  the number's subject tag, raw
-- ARGV[5]  when the approved code was sent (ms; 0: unknown): the newest send
--          of the number's record (verify_and_consume.lua), which
--          count_prefix_send.lua scored the send with
-- Returns 1.
local sends, approved, latest, trusted = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local subject, subject_raw = ARGV[1], ARGV[4]
-- Kept a string: handed to Redis as is (Lua would format a number with
-- snprintf, and parse one with strtod, a few thousand instructions each).
local sent = ARGV[5]
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

-- The send is the member of that very millisecond carrying the number's
-- tag (8 raw bytes after the token and source; `token:source:subject` in
-- hex before issue 30). Sends to other numbers in the same millisecond are
-- the only others read.
local member = nil
if sent ~= '0' then
  for _, candidate in ipairs(redis.call('ZRANGEBYSCORE', sends, sent, sent)) do
    if #candidate == 24 then
      if string.sub(candidate, 17, 24) == subject_raw then
        member = candidate
        break
      end
    elseif string.match(candidate, ':([^:]*)$') == subject then
      member = candidate
      break
    end
  end
end
if not member then
  -- A send an older version counted (at its own clock, not its record's):
  -- its latest-send hash says which. Nothing writes that hash any more, so
  -- this reads a missing key once the last old replica's hash has expired
  -- (a window after its last send).
  local field = subject_raw
  member = redis.call('HGET', latest, field)
  if not member then
    field = subject
    member = redis.call('HGET', latest, field)
  end
  if member then
    redis.call('HDEL', latest, field)
    sent = redis.call('ZSCORE', sends, member)
    if not sent then
      member = nil
    end
  end
end
if member then
  -- The approved send keeps its token: 8 raw bytes, or the hex before ':'.
  local token = string.sub(member, 1, 8)
  if #member ~= 24 then
    token = string.match(member, '^[^:]*')
  end
  redis.call('ZREM', sends, member)
  redis.call('ZADD', approved, sent, token)
  redis.call('PEXPIRE', approved, window)
end
return 1
