-- prefix_log: a destination prefix's counted sends as the pumping guard keeps
-- them (issue 30: a few tens of bytes per send, nothing per number).
-- Not a script: src/store/redis/scripts.rs puts it before every script that
-- reads or writes the log (count_prefix_send, count_prefix_approval,
-- prefix_counts, refund_prefix_send). Those scripts name the log's key `log`
-- (`local log = KEYS[n]`).
-- Layout: one hash per prefix.
--   'w'        the width of a time bucket (ms), fixed when the hash is made
--              (window / 60): it decides only how much a decision reads,
--              never what it counts, so a changed window is safe
--   'f'        the oldest bucket kept     'l'  the newest send's time (ms)
--   <k>.<j>    chunk j (from 0) of bucket k (sends at k*w .. (k+1)*w - 1):
--              at most 128 entries of 27 bytes (so an append copies at most
--              3.4 KB, however busy the prefix), in the order counted, so in
--              time order across the bucket's chunks: the time (ms, 6 bytes
--              big-endian), the send's token (4 random bytes), its source (8),
--              the number's subject tag (8), its state: 'u' unapproved,
--              'a' its own code approved, 'r' refunded (kept, so that the
--              number's latest send stays the one it was)
--   m<k>       bucket k's chunk index, 10 bytes a chunk: its first send's
--              time (6), how many of its sends are unapproved (2) and
--              approved (2), so a verdict reads at most three chunks of an
--              edge bucket, the others by their counts
--   u<k>, a<k> how many of bucket k's sends are unapproved / approved
-- The number's latest send (only its code can be approved) is its newest
-- entry: found by searching the buckets newest first, not kept per number.
-- Rust twin: src/store/prefix_window.rs (its `SendBuckets`).
local ENTRY = 27
local CHUNK = 128 * ENTRY
local META = 10
local TOKEN_AT, SOURCE_AT, SUBJECT_AT, STATE_AT = 7, 11, 19, 27

-- The time of entry i (0-based) of bucket b.
local function entry_time(b, i)
  return (struct.unpack('>I6', b, i * ENTRY + 1))
end

-- How many entries of bucket b were sent at or before t.
local function entries_upto(b, t)
  local low, high = 0, #b / ENTRY
  while low < high do
    local mid = math.floor((low + high) / 2)
    if entry_time(b, mid) <= t then
      low = mid + 1
    else
      high = mid
    end
  end
  return low
end

-- The log's bucket width, oldest bucket and newest send time, or nil when
-- nothing was counted in the new layout.
local function log_shape(log)
  local shape = redis.call('HMGET', log, 'w', 'f', 'l')
  if not shape[1] then
    return nil
  end
  return tonumber(shape[1]), tonumber(shape[2]), tonumber(shape[3])
end

-- Chunk j's (0-based) first time and counts in bucket index m.
local function chunk_meta(m, j)
  local first, unapproved, approved = struct.unpack('>I6I2I2', m, j * META + 1)
  return first, unapproved, approved
end

-- The number of chunks in bucket k, and its index.
local function bucket_index(log, k)
  local m = redis.call('HGET', log, 'm' .. k) or ''
  return #m / META, m
end

-- Calls visit(b, from, to) for each chunk of bucket k holding entries at
-- times in (after, upto], with the 0-based range [from, to) of them; a chunk
-- whose every entry is in the range goes to whole(u, a) with its counts
-- instead, if `whole` is given. Stops when visit returns true (and then
-- returns true).
local function bucket_range(log, k, after, upto, visit, whole)
  local chunks, m = bucket_index(log, k)
  for j = 0, chunks - 1 do
    local first, unapproved, approved = chunk_meta(m, j)
    if first > upto then
      return false
    end
    -- A chunk's sends are no later than the next chunk's first.
    local next_first = nil
    if j + 1 < chunks then
      next_first = (chunk_meta(m, j + 1))
    end
    if next_first and next_first <= after then
      -- wholly at or before `after`: nothing to count
    elseif whole and first > after and next_first and next_first <= upto then
      whole(unapproved, approved)
    else
      local b = redis.call('HGET', log, k .. '.' .. j) or ''
      local from, to = entries_upto(b, after), entries_upto(b, upto)
      if from < to and visit(b, from, to) then
        return true
      end
    end
  end
  return false
end

-- The buckets that may hold sends at times in (after, upto].
local function bucket_span(log, after, upto)
  local width, first = log_shape(log)
  if not width or upto <= after then
    return nil
  end
  return width, math.max(first, math.floor((after + 1) / width)), math.floor(upto / width)
end

-- Unapproved and approved sends at times in (after, upto].
local function log_counts(log, after, upto)
  local width, from, to = bucket_span(log, after, upto)
  if not width then
    return 0, 0
  end
  local unapproved, approved = 0, 0
  local function count(b, first, last)
    for i = first, last - 1 do
      local state = string.sub(b, i * ENTRY + STATE_AT, i * ENTRY + STATE_AT)
      if state == 'u' then
        unapproved = unapproved + 1
      elseif state == 'a' then
        approved = approved + 1
      end
    end
    return false
  end
  local function add(u, a)
    unapproved = unapproved + u
    approved = approved + a
  end
  local whole = {}
  for k = from, to do
    if (k + 1) * width - 1 > upto or k * width <= after then
      bucket_range(log, k, after, upto, count, add)
    else
      whole[#whole + 1] = 'u' .. k
      whole[#whole + 1] = 'a' .. k
    end
  end
  if #whole > 0 then
    local counts = redis.call('HMGET', log, unpack(whole))
    for i = 1, #counts, 2 do
      unapproved = unapproved + tonumber(counts[i] or 0)
      approved = approved + tonumber(counts[i + 1] or 0)
    end
  end
  return unapproved, approved
end

-- Adds the sources of unapproved sends at times in (after, upto] to `seen`
-- (a set, counted in seen.n) until it holds `needed`.
local function log_sources(log, after, upto, seen, needed)
  local width, from, to = bucket_span(log, after, upto)
  if not width or seen.n >= needed then
    return
  end
  local function collect(b, first, last)
    for i = first, last - 1 do
      local at = i * ENTRY
      if string.sub(b, at + STATE_AT, at + STATE_AT) == 'u' then
        local source = string.sub(b, at + SOURCE_AT, at + SOURCE_AT + 7)
        if not seen[source] then
          seen[source] = true
          seen.n = seen.n + 1
          if seen.n >= needed then
            return true
          end
        end
      end
    end
    return false
  end
  for k = from, to do
    if bucket_range(log, k, after, upto, collect) then
      return
    end
  end
end

-- Drops the buckets whose every send is at or before `cutoff`.
local function log_forget(log, cutoff)
  local width, first = log_shape(log)
  if not width then
    return
  end
  local keep_from = math.floor((cutoff + 1) / width)
  if keep_from <= first then
    return
  end
  for k = first, keep_from - 1 do
    local fields = { 'm' .. k, 'u' .. k, 'a' .. k }
    for j = 0, bucket_index(log, k) - 1 do
      fields[#fields + 1] = k .. '.' .. j
    end
    redis.call('HDEL', log, unpack(fields))
  end
  redis.call('HSET', log, 'f', keep_from)
end

-- Appends a send at `now` (token, source and subject: 20 raw bytes) as
-- unapproved, keeping the log for `window`. Times never go backwards in the
-- log (a failover to a master whose clock is behind): such a send is
-- recorded at the newest time already there, so it is judged no earlier.
local function log_append(log, now, sent, window)
  local width, _, newest = log_shape(log)
  if not width then
    width = math.max(1, math.floor(window / 60))
    redis.call('HSET', log, 'w', width, 'f', math.floor(now / width))
  elseif newest and newest > now then
    now = newest
  end
  local k = math.floor(now / width)
  local chunks, m = bucket_index(log, k)
  local b = ''
  if chunks > 0 then
    b = redis.call('HGET', log, k .. '.' .. (chunks - 1)) or ''
  end
  if chunks == 0 or #b >= CHUNK then
    b = ''
    chunks = chunks + 1
    m = m .. struct.pack('>I6I2I2', now, 1, 0)
  else
    local first, unapproved, approved = chunk_meta(m, chunks - 1)
    m = string.sub(m, 1, -META - 1) .. struct.pack('>I6I2I2', first, unapproved + 1, approved)
  end
  local entry = struct.pack('>I6', now) .. sent .. 'u'
  redis.call('HSET', log, k .. '.' .. (chunks - 1), b .. entry, 'm' .. k, m, 'l', now)
  redis.call('HINCRBY', log, 'u' .. k, 1)
  redis.call('PEXPIRE', log, window)
end

-- The newest entry whose bytes at `offset` are `value`, searching the
-- buckets newest first down to `after`'s; nil if it was sent at or before
-- `after` or there is none. Else its bucket, its chunk (0-based), the
-- chunk's text and the entry's position there (1-based, its first byte).
local function log_find(log, offset, value, after)
  local width, first, newest = log_shape(log)
  if not width then
    return nil
  end
  local low = math.max(first, math.floor((after + 1) / width))
  for k = math.floor(newest / width), low, -1 do
    for j = bucket_index(log, k) - 1, 0, -1 do
      local b = redis.call('HGET', log, k .. '.' .. j) or ''
      local found, from = nil, 1
      while true do
        local at = string.find(b, value, from, true)
        if not at then
          break
        end
        if (at - offset) % ENTRY == 0 then
          found = at - offset + 1
        end
        from = at + 1
      end
      if found then
        if entry_time(b, (found - 1) / ENTRY) <= after then
          return nil
        end
        return k, j, b, found
      end
    end
  end
  return nil
end

-- Sets the state of the entry at `at` of bucket k's chunk j (text b) from
-- 'u' to `state` ('a' or 'r'), with the chunk's and the bucket's counts.
local function log_mark(log, k, j, b, at, state)
  local byte = at + STATE_AT - 1
  local _, m = bucket_index(log, k)
  local first, unapproved, approved = chunk_meta(m, j)
  if state == 'a' then
    approved = approved + 1
  end
  local meta = struct.pack('>I6I2I2', first, unapproved - 1, approved)
  local index = string.sub(m, 1, j * META) .. meta .. string.sub(m, (j + 1) * META + 1)
  local entries = string.sub(b, 1, byte - 1) .. state .. string.sub(b, byte + 1)
  redis.call('HSET', log, k .. '.' .. j, entries, 'm' .. k, index)
  redis.call('HINCRBY', log, 'u' .. k, -1)
  if state == 'a' then
    redis.call('HINCRBY', log, 'a' .. k, 1)
  end
end
