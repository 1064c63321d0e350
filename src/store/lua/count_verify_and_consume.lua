-- count_verify_and_consume: one VerifyOtp's store work in one atomic call,
-- for a single Redis server or a Sentinel-managed master (a Redis Cluster
-- spreads these keys over slots and runs the steps one script each instead).
-- This is only the driver: src/store/redis/scripts.rs puts before it the
-- scripts record_send, refund_send and verify_and_consume, each wrapped as
-- `local function <name>(KEYS, ARGV) <script> end`, so every rule is written
-- once.
-- Rust twin: store::check_in_steps in src/store/verify_plan.rs (same order
-- and same refunds; keep them in step): each verify log in turn, the first
-- refusal wins and the earlier counts are taken back; then the check.
-- KEYS[1..n]   the verify logs (n = ARGV[1])
-- KEYS[n+1]    the subject's record
-- KEYS[n+2], KEYS[n+3]  (optional) its legacy keys (number_record.lua)
-- ARGV[1]  n; then per log: its token, its rule count r, r pairs of limit and
--          period (ms); then verify_and_consume.lua's arguments (max attempts,
--          candidate digests).
-- Returns {'refused', log_index (0-based), record_send reply}  nothing counted
--         {'checked', verify_and_consume reply}
local log_count = tonumber(ARGV[1])
local at = 2
local tokens = {}

for i = 1, log_count do
  local rule_count = tonumber(ARGV[at + 1])
  local args = { ARGV[at] }
  for j = 1, rule_count * 2 do
    args[j + 1] = ARGV[at + 1 + j]
  end
  tokens[i] = ARGV[at]
  local reply = record_send({ KEYS[i] }, args)
  if reply[1] == 'refused' then
    for k = 1, i - 1 do
      refund_send({ KEYS[k] }, { tokens[k] })
    end
    return { 'refused', i - 1, reply }
  end
  at = at + 2 + rule_count * 2
end

local check_args = {}
for j = at, #ARGV do
  check_args[#check_args + 1] = ARGV[j]
end
local record = log_count + 1
if #KEYS > record then
  return { 'checked', verify_and_consume({ KEYS[record], KEYS[record + 1], KEYS[record + 2] }, check_args) }
end
return { 'checked', verify_and_consume({ KEYS[record] }, check_args) }
