-- count_send_and_put_code: one SendOtp's store work in one atomic call, for
-- a single Redis server or a Sentinel-managed master (a Redis Cluster spreads
-- these keys over slots and runs the steps one script each instead).
-- This is only the driver: src/store/redis/scripts.rs puts before it the
-- scripts record_send, record_packed_send, count_prefix_send, put_code,
-- lock_remaining, refund_send, refund_packed_send, discard_code and
-- reserve_spend, each wrapped as `local function <name>(KEYS, ARGV) <script>
-- end` (the parameters shadow the globals), so every rule is written once.
-- Rust twin: store::count_in_steps in src/store/send_plan.rs (same order and
-- same refunds; keep them in step): each log in turn, the first refusal wins
-- and the earlier counts are taken back (the refusal carries the number's
-- lock, read then: store::refusal_of lets a lock outlasting it decide);
-- then the prefix; then the code; then the spend caps' reservation; a
-- refusing suspension or a lock takes back every count, a spend refusal
-- every count and the code.
-- KEYS[1..n]       the send logs, the phone's first (n = ARGV[1]); the
--                  phone's log is its record, the same key as KEYS[c]
-- KEYS[n+1..n+7]   the prefix's seven keys (count_prefix_send.lua), if judged
-- KEYS[c-h..c-1]   the spend windows' hashes (reserve_spend.lua), w of them,
--                  then, if h = 2w, the same windows' in the previous layout
-- KEYS[c]          the subject's record (c = ARGV[2])
-- KEYS[c+1..]      legacy keys (number_record.lua's adopt_legacy): each
--                  packed log's in log order, then the record's
-- ARGV[1]  n; ARGV[2]  c; then per log: 'p' (a packed log:
--          record_packed_send.lua), its nonce, its field (empty for the
--          number's record) and its count of legacy keys, or 'z' (a sorted
--          set: record_send.lua) and its token; then
--          its rule count r, r pairs of limit and period (ms); then '1'
--          followed by count_prefix_send.lua's first nine arguments (the
--          driver adds the tenth and eleventh: the number's record's send
--          time, read in this call) and refuse
--          ('1': enforce, '0': monitor), or '0' when no prefix is judged;
--          then digest, lifetime_ms, max_attempts and the record's count
--          of legacy keys; then w (0: no spend step, at most 3) followed,
--          when w > 0, by reserve_spend.lua's arguments: the amount and w
--          pairs of limit and bucket width (ms). (The h spend keys handed,
--          w or 2w, are those between the prefix's keys and the record.)
-- Returns, each reply being the step's own:
--   {'refused', log_index (0-based), record_send reply, lock_remaining reply}
--                                                               nothing counted
--   {'suspended', count_prefix_send reply}                      nothing counted
--   {'locked', put_code reply, count_prefix_send reply or {}}   nothing counted
--   {'spend_refused', reserve_spend reply, count_prefix_send reply or {}}
--                                                   nothing counted, code discarded
--   {'stored', put_code reply, count_prefix_send reply or {}, {next_allowed_in_ms per log},
--    {send time ms per log (0 for 'z' logs)}[, reserve_spend reply]}
--   the reserve_spend reply left out when there was no spend step or when
--   it reserved at the first packed log's send time (the common case: the
--   caller has that time from the reply already, and each replied element
--   costs Redis more than the caller's division).
local log_count = tonumber(ARGV[1])
local record_at = tonumber(ARGV[2])
local legacy_at = record_at + 1
local at = 3
local packed = {}
local fields = {}
local tokens = {}
local next_allowed = {}
local sent_at = {}

-- Takes back the sends counted in the first `count` logs.
local function take_back_logs(count)
  for i = 1, count do
    if packed[i] then
      refund_packed_send({ KEYS[i] }, { tokens[i], fields[i] })
    else
      refund_send({ KEYS[i] }, { tokens[i] })
    end
  end
end

-- record_packed_send on KEYS[i] with its `legacy` keys from KEYS[legacy_at].
local function count_packed(i, legacy, args)
  local l = legacy_at
  legacy_at = legacy_at + legacy
  if legacy == 2 then
    return record_packed_send({ KEYS[i], KEYS[l], KEYS[l + 1] }, args)
  elseif legacy == 1 then
    return record_packed_send({ KEYS[i], KEYS[l] }, args)
  end
  return record_packed_send({ KEYS[i] }, args)
end

-- On a refusal by log i (its arguments read up to `at`): the number's lock,
-- which the refusal carries so the caller can tell a lock outlasting it
-- (store::refusal_of). Reads past the later logs' arguments to the code's
-- (max attempts, and whether the record has legacy keys, which follow every
-- packed log's); only a refused send pays this.
local function number_lock(i, at)
  local legacy = legacy_at
  for _ = i + 1, log_count do
    local is_packed = ARGV[at] == 'p'
    at = at + 2
    if is_packed then
      legacy = legacy + tonumber(ARGV[at + 1])
      at = at + 2
    end
    at = at + 1 + tonumber(ARGV[at]) * 2
  end
  local code_at = at + 1
  if ARGV[at] == '1' then
    code_at = at + 11
  end
  local args = { ARGV[code_at + 2] }
  if ARGV[code_at + 3] == '2' then
    return lock_remaining({ KEYS[record_at], KEYS[legacy], KEYS[legacy + 1] }, args)
  end
  return lock_remaining({ KEYS[record_at] }, args)
end

for i = 1, log_count do
  packed[i] = ARGV[at] == 'p'
  local args = { ARGV[at + 1] }
  local legacy = 0
  at = at + 2
  if packed[i] then
    fields[i] = ARGV[at]
    args[2] = ARGV[at]
    legacy = tonumber(ARGV[at + 1])
    at = at + 2
  end
  local rule_count = tonumber(ARGV[at])
  local first_rule = #args
  for j = 1, rule_count * 2 do
    args[first_rule + j] = ARGV[at + j]
  end
  at = at + 1 + rule_count * 2
  local reply
  if packed[i] then
    reply = count_packed(i, legacy, args)
  else
    reply = record_send({ KEYS[i] }, args)
  end
  if reply[1] == 'refused' then
    take_back_logs(i - 1)
    return { 'refused', i - 1, reply, number_lock(i, at) }
  end
  next_allowed[i] = reply[2]
  if packed[i] then
    sent_at[i] = reply[3]
    tokens[i] = reply[3] .. ':' .. args[1]
  else
    sent_at[i] = 0
    tokens[i] = args[1]
  end
end

local prefix_reply = {}
local prefix_token = nil
-- The spend keys follow the logs and the prefix's keys, if judged.
local spend_keys_at = log_count + 1
if ARGV[at] == '1' then
  spend_keys_at = spend_keys_at + 7
  local sends = log_count + 1
  local args = {}
  for j = 1, 9 do
    args[j] = ARGV[at + j]
  end
  -- Counted at the time the number's record logged the send, read in this
  -- call (so it is the step's now too): the approval of its code finds it
  -- by the time the record kept.
  for i = 1, log_count do
    if packed[i] and KEYS[i] == KEYS[record_at] then
      args[10], args[11] = sent_at[i], '1'
      break
    end
  end
  local refuse = ARGV[at + 10] == '1'
  at = at + 11
  prefix_reply = count_prefix_send(
    { KEYS[sends], KEYS[sends + 1], KEYS[sends + 2], KEYS[sends + 3], KEYS[sends + 4], KEYS[sends + 5], KEYS[sends + 6] },
    args
  )
  if prefix_reply[1] == 'counted' then
    prefix_token = args[1]
  elseif refuse then
    take_back_logs(log_count)
    return { 'suspended', prefix_reply }
  end
else
  at = at + 1
end

local put_args = { ARGV[at], ARGV[at + 1], ARGV[at + 2] }
local put_reply
if ARGV[at + 3] == '2' then
  put_reply = put_code({ KEYS[record_at], KEYS[legacy_at], KEYS[legacy_at + 1] }, put_args)
else
  put_reply = put_code({ KEYS[record_at] }, put_args)
end

-- Takes back every count: the logs' and the prefix's.
local function take_back_all()
  take_back_logs(log_count)
  if prefix_token then
    refund_send({ KEYS[log_count + 1] }, { prefix_token })
  end
end

if put_reply[1] == 'locked' then
  take_back_all()
  return { 'locked', put_reply, prefix_reply }
end

-- reserve_spend on the `handed` spend keys just before the record.
local function reserve_windows(handed, args)
  local s = record_at - handed
  if handed == 1 then
    return reserve_spend({ KEYS[s] }, args)
  elseif handed == 2 then
    return reserve_spend({ KEYS[s], KEYS[s + 1] }, args)
  elseif handed == 3 then
    return reserve_spend({ KEYS[s], KEYS[s + 1], KEYS[s + 2] }, args)
  elseif handed == 4 then
    return reserve_spend({ KEYS[s], KEYS[s + 1], KEYS[s + 2], KEYS[s + 3] }, args)
  end
  return reserve_spend({ KEYS[s], KEYS[s + 1], KEYS[s + 2], KEYS[s + 3], KEYS[s + 4], KEYS[s + 5] }, args)
end

local spend_at = at + 4
local windows = tonumber(ARGV[spend_at])
if windows > 0 then
  local handed = record_at - spend_keys_at
  local args = {}
  for j = 1, 1 + windows * 2 do
    args[j] = ARGV[spend_at + j]
  end
  -- Redis's time as the first packed log read it in this call: the
  -- reservation then needs no TIME (and its two numbers parsed) of its own.
  local timed = false
  for i = 1, log_count do
    if packed[i] then
      args[2 + windows * 2] = sent_at[i]
      timed = true
      break
    end
  end
  local spend_reply = reserve_windows(handed, args)
  if spend_reply[1] == 'refused' then
    -- The record's legacy keys, if any, were adopted by put_code just now.
    discard_code({ KEYS[record_at] }, { put_args[1] })
    take_back_all()
    return { 'spend_refused', spend_reply, prefix_reply }
  end
  if not timed then
    return { 'stored', put_reply, prefix_reply, next_allowed, sent_at, spend_reply }
  end
end
return { 'stored', put_reply, prefix_reply, next_allowed, sent_at }
