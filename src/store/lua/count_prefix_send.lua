-- count_prefix_send: the pumping guard's one decision for a send to a
-- destination prefix.
-- Rust twin: MemoryStore::count_prefix_send in src/store/memory/prefixes.rs,
-- through PrefixWindow::count_send in src/store/prefix_window.rs (same rule;
-- keep them in step). An exempt prefix lets the send through uncounted; a
-- suspended one refuses it unless the number approved a code here within the
-- trust period (then it passes uncounted). Otherwise, unless the number is
-- trusted, suspend the prefix when at least min_sends sends are old enough to
-- judge (their codes can no longer be approved), fewer than
-- min_approved_percent of them had their own code approved, and the
-- unapproved ones came from at least min_sources sources; else count the
-- send. Only sends after the last suspension (or lift) are judged: the
-- earlier ones stay as the operator's evidence until they leave the window.
-- KEYS[1]  unapproved sends (sorted set: member = token, source and subject,
--          8 raw bytes each (issue 30; before it `token:source:subject` in
--          hex, still read), score = send ms)
-- KEYS[2]  approved sends (sorted set: member = token, score = its send ms)
-- KEYS[3]  the suspension (a string that expires when it lifts)
-- KEYS[4]  each number's latest send (hash: subject, raw -> member of KEYS[1]),
--          as versions up to `5022918` kept it: no longer written or
--          pruned here (an approval finds its send by its time, ARGV[10]);
--          read by count_prefix_approval.lua while an old replica writes it
-- KEYS[5]  trusted numbers (sorted set: member = subject in hex, score = trusted until ms)
-- KEYS[6]  an operator's exemption (a string that expires when it ends)
-- KEYS[7]  when the last suspension began or was lifted (ms; sends up to
--          then are never judged again; expires after a window)
--          All seven carry the prefix as hash tag: one Redis Cluster slot.
-- ARGV[1]  this send's member (token, source, subject: 8 raw bytes each)
-- ARGV[2]  window_ms     ARGV[3]  judge_after_ms      ARGV[4]  min_sends
-- ARGV[5]  min_approved_percent                       ARGV[6]  suspension_ms
-- ARGV[7]  min_sources   ARGV[8]  the number's subject tag in hex (trust)
-- ARGV[9]  the number's subject tag, raw (unused after `5022918`; kept so
--          the arguments keep their places)
-- ARGV[10] (optional) when the number's record logged this send (ms): the
--          send's score, which the approval of its code finds it by (the
--          record's newest send, verify_and_consume.lua); without it, now
-- ARGV[11] (optional) '1': ARGV[10] was read in this same call (the send
--          driver), so it is also now and Redis's clock is not read again
-- Returns {'counted'} (also for a send let through uncounted),
-- {'suspended', lift_in_ms} or, when this call suspended the prefix,
-- {'suspended', lift_in_ms, judged, approved}.
local sends, approved, suspension, trusted, exempt, since = KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[6], KEYS[7]
local subject = ARGV[8]

-- A member's source: 8 raw bytes after the token, or, as written before
-- issue 30, `token:source:subject` in hex (a bare token, from before sources
-- were kept, has none).
local function source_of(member)
  if #member == 24 then
    return string.sub(member, 9, 16)
  end
  return string.match(member, '^[^:]*:([^:]*)')
end
-- Redis's clock, not the caller's: every replica then agrees on time.
local now
if ARGV[11] == '1' then
  now = tonumber(ARGV[10])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
-- As given (a string is handed to ZADD unconverted: Lua formats a number
-- with snprintf, a few thousand instructions).
local sent = ARGV[10] or now
local window = tonumber(ARGV[2])

if redis.call('EXISTS', exempt) == 1 then
  return { 'counted' }
end
local is_trusted = tonumber(redis.call('ZSCORE', trusted, subject) or 0) > now
local lift_in = redis.call('PTTL', suspension)
if lift_in > 0 then
  if is_trusted then
    return { 'counted' }
  end
  return { 'suspended', lift_in }
end

-- Sends that left the window go. (An old replica's latest-send entries for
-- them stay until its hash expires: an approval checks that its send is
-- still here.)
redis.call('ZREMRANGEBYSCORE', sends, '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', approved, '-inf', now - window)

-- A trusted number's send is counted but never the one that judges.
if not is_trusted then
  local judged_before = now - tonumber(ARGV[3])
  local judged_up_to = redis.call('GET', since)
  local after = '-inf'
  if judged_up_to then
    after = '(' .. judged_up_to
  end
  local unapproved = redis.call('ZCOUNT', sends, after, judged_before)
  local approvals = redis.call('ZCOUNT', approved, after, judged_before)
  local judged = unapproved + approvals
  if judged >= tonumber(ARGV[4]) and approvals * 100 < tonumber(ARGV[5]) * judged then
    -- Only now, on the way to a verdict, a pass over the unapproved judged
    -- sends, stopping once enough sources are seen.
    local needed, seen, sources = tonumber(ARGV[7]), {}, 0
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', sends, after, judged_before)) do
      if sources >= needed then
        break
      end
      -- A member written before sources were kept (a bare token) is one
      -- source for all of them, so a rolling upgrade adds no sources.
      local source = source_of(member) or 'before-sources'
      if not seen[source] then
        seen[source] = true
        sources = sources + 1
      end
    end
    if sources >= needed then
      local suspension_ms = tonumber(ARGV[6])
      redis.call('SET', suspension, '1', 'PX', suspension_ms)
      redis.call('SET', since, now, 'PX', window)
      return { 'suspended', suspension_ms, judged, approvals }
    end
  end
end

redis.call('ZADD', sends, sent, ARGV[1])
redis.call('PEXPIRE', sends, window)
return { 'counted' }
