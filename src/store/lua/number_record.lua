-- number_record: the one record of a phone number (its code and its send
-- log, one key) and the packed send log of a client_key, as one string.
-- Not a script: src/store/redis/scripts.rs puts it before every script that
-- reads or writes such a record (put_code, verify_and_consume,
-- pending_lifetime, discard_code, cancel_code, record_packed_send,
-- refund_packed_send). Those scripts name their key `key` (`local key =
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

-- Adopts into `record` what a version before issue 30 kept for the same
-- number or client_key (a rolling upgrade: an old replica beside this one),
-- and deletes it: the code hash at `legacy_code` (d = digest, a = guesses
-- spent, l = locked; its TTL the code's life) and the sorted set of sends at
-- `legacy_sends` (scored by send ms). A legacy code is newer than the
-- record's (it was written after the last adoption), so it wins, keeping the
-- larger guess count. Either name may be nil: the caller passes them only
-- while old records can still matter, and never on a Redis Cluster, where
-- they live in other slots (src/store/redis/number_record.rs).
local function adopt_legacy(key, record, legacy_code, legacy_sends, now)
  local keep = 0
  if legacy_code and redis.call('EXISTS', legacy_code) == 1 then
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
    save(key, record, keep)
  end
end
