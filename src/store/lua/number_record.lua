-- number_record: the one record of a phone number (its code and its send
-- log, one key) and the packed send log of a client_key, as one string.
-- Not a script: src/store/redis/scripts.rs puts it before every script that
-- reads or writes such a record (put_code, verify_and_consume,
-- pending_lifetime, lock_remaining, discard_code, cancel_code,
-- record_packed_send, refund_packed_send). Those scripts name their key `key` (`local key =
-- KEYS[1]`), the one key `save` writes.
-- Layout (issue 30: a quarter of the bytes per number):
--   byte 1        state: 0 none, 1 a code is pending, 2 no code but spent
--                 guesses kept (discarded, cancelled), 3 locked
--   if state > 0: bytes 2..17 the code's digest (its first 16 bytes; zeros
--                 once destroyed), byte 18 guesses spent, bytes 19..24 when
--                 the code state ends (ms on Redis's clock, big-endian)
--   then          the send log: 8 bytes per send, its time (ms, 6 bytes
--                 big-endian) and a 2-byte nonce, in the order counted
-- The key's TTL is the longest of what it holds (the code state's end, the
-- send log's longest rule after its newest send): each writer only extends it.
-- A client_key's log is not a key of its own (a key with a TTL costs ~150 B
-- however small its value) but a field of a bucket hash shared by the
-- client keys whose digests start with the same 12 bits (kept a listpack
-- while it holds at most hash-max-listpack-entries fields of at most
-- hash-max-listpack-value bytes): the field is the client's 16-byte digest,
-- its value 6 bytes saying until when it must be kept (ms, big-endian: the
-- newest send plus the longest rule, as a key's TTL) and then the sends,
-- 8 bytes each as above. Redis 7.0 has no TTL per field, so a write prunes
-- the fields past their time, a whole bucket at most every 1/16 of the
-- longest rule (the empty field holds when next); the bucket's own TTL is
-- the longest of its fields'.
-- Rust twin: the memory store keeps the same facts as fields
-- (src/store/memory/codes.rs, send_logs.rs); the Rust side of this layout is
-- src/store/redis/number_record.rs.
local NO_DIGEST = string.rep('\0', 16)

-- Redis's clock in ms, not the caller's: every replica then agrees on time.
local function clock_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- The record in `raw` (false when the key is absent) as a table; a code
-- state that has ended by `now` reads as none.
local function read_record(raw, now)
  local record = { state = 0, digest = NO_DIGEST, attempts = 0, ends = 0, log = '' }
  if not raw or #raw == 0 then
    return record
  end
  local state = string.byte(raw, 1)
  local log_at = 2
  if state ~= 0 then
    log_at = 25
    local ends = struct.unpack('>I6', raw, 19)
    if ends > now then
      record.state = state
      record.digest = string.sub(raw, 2, 17)
      record.attempts = string.byte(raw, 18)
      record.ends = ends
    end
  end
  record.log = string.sub(raw, log_at)
  return record
end

local function encode_record(record)
  if record.state == 0 then
    return '\0' .. record.log
  end
  return string.char(record.state) .. record.digest .. string.char(math.min(record.attempts, 255))
    .. struct.pack('>I6', record.ends) .. record.log
end

-- Writes `record` to `key` (deletes the key when it holds nothing), the
-- key's TTL extended to at least `keep_ms`, never shortened.
local function save(key, record, keep_ms)
  if record.state == 0 and #record.log == 0 then
    redis.call('DEL', key)
    return
  end
  local ttl = redis.call('PTTL', key)
  redis.call('SET', key, encode_record(record), 'KEEPTTL')
  if ttl < keep_ms then
    redis.call('PEXPIRE', key, math.max(keep_ms, 1))
  end
end

-- The send times in `log`, with their byte offsets.
local function send_times(log)
  local times = {}
  for at = 1, #log - 7, 8 do
    times[#times + 1] = { time = struct.unpack('>I6', log, at), at = at }
  end
  return times
end

-- Time (ms) until `record`'s wrong-guess lock ends, or nil when it is not
-- locked: locked (state 3), or every guess of `max_attempts` spent. The one
-- statement of the lock, for put_code and lock_remaining.
-- Rust twin: lock_left in src/store/memory/codes.rs.
local function lock_left(record, max_attempts, now)
  if record.state == 3 or (record.state ~= 0 and record.attempts >= max_attempts) then
    return record.ends - now
  end
  return nil
end

-- Adopts into `record` what an older version kept for the same number or
-- client_key (a rolling upgrade: an old replica beside this one), and
-- deletes it: the code hash at `legacy_code` (d = digest, a = guesses
-- spent, l = locked; its TTL the code's life) or, for a client, its packed
-- log as a key of its own there, and the sorted set of sends at
-- `legacy_sends` (scored by send ms). A legacy code is newer than the
-- record's (it was written after the last adoption), so it wins, keeping the
-- larger guess count. Either name may be nil: the caller passes them only
-- while old records can still matter, and never on a Redis Cluster, where
-- they live in other slots (src/store/redis/number_record.rs).
-- `store(record, keep_ms)` writes the record where it is kept (`save` on
-- `key` when nil).
local function adopt_legacy(key, record, legacy_code, legacy_sends, now, store)
  local keep = 0
  local code_kind = legacy_code and redis.call('TYPE', legacy_code).ok
  if code_kind == 'string' then
    -- A client's log as the first compact layout kept it (a key of its own,
    -- `<prefix>:c` + its 16 raw bytes, holding a record with no code state):
    -- its sends join this log.
    local ttl = redis.call('PTTL', legacy_code)
    if ttl > 0 then
      record.log = record.log .. read_record(redis.call('GET', legacy_code), now).log
      keep = ttl
    end
    redis.call('DEL', legacy_code)
  elseif code_kind == 'hash' then
    local ttl = redis.call('PTTL', legacy_code)
    local fields = redis.call('HMGET', legacy_code, 'd', 'a', 'l')
    if ttl > 0 then
      local state = 2
      if fields[3] then
        state = 3
      elseif fields[1] then
        state = 1
      end
      record.state = state
      record.digest = NO_DIGEST
      if state == 1 then
        record.digest = string.sub(fields[1], 1, 16)
      end
      record.attempts = math.max(record.attempts, tonumber(fields[2] or '0') or 0)
      record.ends = math.max(record.ends, now + ttl)
      keep = ttl
    end
    redis.call('DEL', legacy_code)
  end
  if legacy_sends and redis.call('EXISTS', legacy_sends) == 1 then
    local ttl = redis.call('PTTL', legacy_sends)
    local sends = redis.call('ZRANGE', legacy_sends, 0, -1, 'WITHSCORES')
    local added = {}
    for i = 2, #sends, 2 do
      added[#added + 1] = struct.pack('>I6I2', tonumber(sends[i]), 0)
    end
    record.log = record.log .. table.concat(added)
    keep = math.max(keep, ttl)
    redis.call('DEL', legacy_sends)
  end
  if keep > 0 then
    if store then
      store(record, keep)
    else
      save(key, record, keep)
    end
  end
end

-- A bucket's fields past their time go (none more often than every
-- `every_ms`: the empty field says when next).
local function prune_bucket(key, now, every_ms)
  local next_at = redis.call('HGET', key, '')
  if next_at and struct.unpack('>I6', next_at) > now then
    return
  end
  local fields = redis.call('HGETALL', key)
  local gone = {}
  for i = 1, #fields, 2 do
    local value = fields[i + 1]
    if fields[i] ~= '' and (#value < 6 or struct.unpack('>I6', value) <= now) then
      gone[#gone + 1] = fields[i]
    end
  end
  if #gone > 0 then
    redis.call('HDEL', key, unpack(gone))
  end
  redis.call('HSET', key, '', struct.pack('>I6', now + every_ms))
end

-- The client log in bucket `key`'s `field` as a record (no code state; a
-- field past its time reads as empty).
local function read_entry(key, field, now)
  local record = { state = 0, digest = NO_DIGEST, attempts = 0, ends = 0, log = '', kept_until = 0 }
  local value = redis.call('HGET', key, field)
  if value and #value >= 6 then
    local kept_until = struct.unpack('>I6', value)
    if kept_until > now then
      record.log = string.sub(value, 7)
      record.kept_until = kept_until
    end
  end
  return record
end

-- Writes `record`'s log to bucket `key`'s `field` (deletes the field when
-- the log is empty), kept at least `keep_ms` more, never less than before;
-- the bucket lives as long as its longest-kept field.
local function save_entry(key, field, record, keep_ms, now)
  if #record.log == 0 then
    redis.call('HDEL', key, field)
    return
  end
  local kept_until = math.max(record.kept_until or 0, now + keep_ms)
  redis.call('HSET', key, field, struct.pack('>I6', kept_until) .. record.log)
  if keep_ms > 0 then
    prune_bucket(key, now, math.max(math.floor(keep_ms / 16), 1))
  end
  if redis.call('PTTL', key) < kept_until - now then
    redis.call('PEXPIRE', key, math.max(kept_until - now, 1))
  end
end

-- The packed log at `key` (a number's record; or, with a non-empty
-- `field`, a client's entry in a bucket) and a function writing it back
-- there: store(record, keep_ms).
local function open_log(key, field, now)
  if field == '' then
    return read_record(redis.call('GET', key), now), function(record, keep_ms)
      save(key, record, keep_ms)
    end
  end
  return read_entry(key, field, now), function(record, keep_ms)
    save_entry(key, field, record, keep_ms, now)
  end
end
