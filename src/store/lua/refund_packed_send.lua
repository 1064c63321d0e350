-- refund_packed_send: take back a send counted by record_packed_send.lua
-- (it did not happen after all). Two sends with the same time and nonce are
-- the same to every rule, so taking back either is exact.
-- Rust twin: MemoryStore::refund_send in src/store/memory/send_logs.rs (same
-- rule; keep them in step).
-- KEYS[1]  the number's record or the client's bucket
-- KEYS[2], KEYS[3]  (optional) as kept before issue 30, adopted and deleted
--          (number_record.lua): a number's code hash and send log, or a
--          client's send log alone (then KEYS[2])
-- ARGV[1]  the refund token, `<send time ms>:<nonce>`
-- ARGV[2]  the client's field in its bucket; empty for a number's record
-- Returns 1 if it was removed, else 0.
local key, legacy_code, legacy_sends = KEYS[1], KEYS[2], KEYS[3]
if not legacy_sends then
  legacy_code, legacy_sends = nil, legacy_code
end
local time, nonce = string.match(ARGV[1], '^(%d+):(%d+)$')
if not time or #time > 15 or tonumber(nonce) > 65535 then
  return 0
end
local entry = struct.pack('>I6I2', tonumber(time), tonumber(nonce))
local now = clock_ms()
local record, store = open_log(key, ARGV[2], now)
adopt_legacy(key, record, legacy_code, legacy_sends, now, store)
local sends = send_times(record.log)
for i = #sends, 1, -1 do
  local at = sends[i].at
  if string.sub(record.log, at, at + 7) == entry then
    record.log = string.sub(record.log, 1, at - 1) .. string.sub(record.log, at + 8)
    store(record, 0)
    return 1
  end
end
return 0
