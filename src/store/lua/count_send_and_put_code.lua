-- count_send_and_put_code: one SendOtp's store work in one atomic call, for
-- a single Redis server or a Sentinel-managed master (a Redis Cluster spreads
-- these keys over slots and runs the steps one script each instead).
-- This is only the driver: src/store/redis/scripts.rs puts before it the
-- scripts record_send, record_packed_send, count_prefix_send, put_code,
-- refund_send and refund_packed_send, each wrapped as `local function
-- <name>(KEYS, ARGV) <script> end` (the parameters shadow the globals), so
-- every rule is written once.
-- Rust twin: store::count_in_steps in src/store/send_plan.rs (same order and
-- same refunds; keep them in step): each log in turn, the first refusal wins
-- and the earlier counts are taken back; then the prefix; then the code; a
-- refusing suspension or a lock takes back every count.
-- KEYS[1..n]       the send logs, the phone's first (n = ARGV[1]); the
--                  phone's log is its record, the same key as KEYS[#KEYS]
-- KEYS[n+1..n+7]   the prefix's seven keys (count_prefix_send.lua), if judged
-- KEYS[#KEYS]      the subject's code record
-- ARGV[1]  n; then per log: 'p' (a packed log: record_packed_send.lua) or
--          'z' (a sorted set: record_send.lua), its token (for 'p' the
--          nonce), its rule count r, r pairs of limit and period (ms); then '1' followed by count_prefix_send.lua's eight
--          arguments and refuse ('1': enforce, '0': monitor), or '0' when no
--          prefix is judged; then digest, lifetime_ms, max_attempts.
-- Returns, each reply being the step's own:
--   {'refused', log_index (0-based), record_send reply}         nothing counted
--   {'suspended', count_prefix_send reply}                      nothing counted
--   {'locked', put_code reply, count_prefix_send reply or {}}   nothing counted
--   {'stored', put_code reply, count_prefix_send reply or {}, {next_allowed_in_ms per log},
--    {send time ms per log (0 for 'z' logs)}}
local log_count = tonumber(ARGV[1])
local at = 2
local packed = {}
local tokens = {}
local next_allowed = {}
local sent_at = {}

-- Takes back the sends counted in the first `count` logs.
local function take_back_logs(count)
  for i = 1, count do
    if packed[i] then
      refund_packed_send({ KEYS[i] }, { tokens[i] })
    else
      refund_send({ KEYS[i] }, { tokens[i] })
    end
  end
end

for i = 1, log_count do
  packed[i] = ARGV[at] == 'p'
  local rule_count = tonumber(ARGV[at + 2])
  local args = { ARGV[at + 1] }
  for j = 1, rule_count * 2 do
    args[j + 1] = ARGV[at + 2 + j]
  end
  at = at + 3 + rule_count * 2
  local reply
  if packed[i] then
    reply = record_packed_send({ KEYS[i] }, args)
  else
    reply = record_send({ KEYS[i] }, args)
  end
  if reply[1] == 'refused' then
    take_back_logs(i - 1)
    return { 'refused', i - 1, reply }
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
if ARGV[at] == '1' then
  local sends = log_count + 1
  local args = {}
  for j = 1, 8 do
    args[j] = ARGV[at + j]
  end
  local refuse = ARGV[at + 9] == '1'
  at = at + 10
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

local put_reply = put_code({ KEYS[#KEYS] }, { ARGV[at], ARGV[at + 1], ARGV[at + 2] })
if put_reply[1] == 'locked' then
  take_back_logs(log_count)
  if prefix_token then
    refund_send({ KEYS[log_count + 1] }, { prefix_token })
  end
  return { 'locked', put_reply, prefix_reply }
end
return { 'stored', put_reply, prefix_reply, next_allowed, sent_at }
