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
-- KEYS[1]  unapproved sends as kept before issue 30 (sorted set: member =
--          token, source and subject, 8 raw bytes each, or before that
--          `token:source:subject` in hex; score = send ms): no longer
--          written, read until it expires a window after the last write
-- KEYS[2]  approved sends as kept before issue 30 (sorted set: member =
--          token, score = its send ms; read as KEYS[1])
-- KEYS[3]  the suspension (a string that expires when it lifts)
-- KEYS[4]  each number's latest send before issue 30 (hash: subject, raw
--          -> member of KEYS[1]; read as KEYS[1])
-- KEYS[5]  trusted numbers (sorted set: member = subject in hex, score = trusted until ms)
-- KEYS[6]  an operator's exemption (a string that expires when it ends)
-- KEYS[7]  when the last suspension began or was lifted (ms; sends up to
--          then are never judged again; expires after a window)
-- KEYS[8]  the prefix's sends (prefix_log.lua: a hash of time buckets)
--          All eight carry the prefix as hash tag: one Redis Cluster slot.
-- ARGV[1]  this send's token (4 random bytes), source (8) and the number's
--          subject tag (8), raw
-- ARGV[2]  window_ms     ARGV[3]  judge_after_ms      ARGV[4]  min_sends
-- ARGV[5]  min_approved_percent                       ARGV[6]  suspension_ms
-- ARGV[7]  min_sources   ARGV[8]  the number's subject tag in hex (trust)
-- ARGV[9]  the number's subject tag, raw
-- Returns {'counted'} (also for a send let through uncounted),
-- {'suspended', lift_in_ms} or, when this call suspended the prefix,
-- {'suspended', lift_in_ms, judged, approved}.
local sends, approved, suspension, latest, trusted, exempt, since = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local log = KEYS[8]
local subject = ARGV[8]

-- A legacy member's source and subject: 8 raw bytes each after the token, or, as
-- written before issue 30, `token:source:subject` in hex (a bare token, from
-- before sources were kept, has neither).
local function source_of(member)
  if #member == 24 then
    return string.sub(member, 9, 16)
  end
  return string.match(member, '^[^:]*:([^:]*)')
end
local function subject_of(member)
  if #member == 24 then
    return string.sub(member, 17, 24)
  end
  return string.match(member, ':([^:]*)$')
end
-- Redis's clock, not the caller's: every replica then agrees on time.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
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

-- Sends that left the window go: whole buckets of the log, and the legacy
-- members with their numbers' latest-send entries.
log_forget(log, now - window)
local gone = redis.call('ZRANGEBYSCORE', sends, '-inf', now - window)
for _, member in ipairs(gone) do
  local of = subject_of(member)
  if of and redis.call('HGET', latest, of) == member then
    redis.call('HDEL', latest, of)
  end
end
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', sends, '-inf', now - window)
end
redis.call('ZREMRANGEBYSCORE', approved, '-inf', now - window)

-- A trusted number's send is counted but never the one that judges.
if not is_trusted then
  local judged_before = now - tonumber(ARGV[3])
  local judged_up_to = redis.call('GET', since)
  local after = '-inf'
  -- The log keeps a bucket until its last send leaves the window: its
  -- earlier sends are not counted.
  local log_after = now - window
  if judged_up_to then
    after = '(' .. judged_up_to
    log_after = math.max(log_after, tonumber(judged_up_to))
  end
  local unapproved, approvals = log_counts(log, log_after, judged_before)
  unapproved = unapproved + redis.call('ZCOUNT', sends, after, judged_before)
  approvals = approvals + redis.call('ZCOUNT', approved, after, judged_before)
  local judged = unapproved + approvals
  if judged >= tonumber(ARGV[4]) and approvals * 100 < tonumber(ARGV[5]) * judged then
    -- Only now, on the way to a verdict, a pass over the unapproved judged
    -- sends, stopping once enough sources are seen.
    local needed, seen = tonumber(ARGV[7]), { n = 0 }
    log_sources(log, log_after, judged_before, seen, needed)
    if seen.n < needed then
      for _, member in ipairs(redis.call('ZRANGEBYSCORE', sends, after, judged_before)) do
        if seen.n >= needed then
          break
        end
        -- A member written before sources were kept (a bare token) is one
        -- source for all of them, so a rolling upgrade adds no sources.
        local source = source_of(member) or 'before-sources'
        if not seen[source] then
          seen[source] = true
          seen.n = seen.n + 1
        end
      end
    end
    if seen.n >= needed then
      local suspension_ms = tonumber(ARGV[6])
      redis.call('SET', suspension, '1', 'PX', suspension_ms)
      redis.call('SET', since, now, 'PX', window)
      return { 'suspended', suspension_ms, judged, approvals }
    end
  end
end

log_append(log, now, ARGV[1], window)
return { 'counted' }
