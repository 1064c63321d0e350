#!/usr/bin/env bash
# Instructions per SendOtp, priced vs unpriced, counted by valgrind's
# callgrind in the service and in redis-server: deterministic, so it holds
# on a shared, busy machine where rps and CPU time do not (no hardware
# counters in this VM). Per build and setting, two runs of N1 and N2 sends
# (closed loop, 1 connection, no warm-up); the difference over N2 - N1 sends
# cancels start-up, seeding and shutdown. In redis-server only the commands'
# work is counted (`processInputBuffer`: parsing, the scripts, the replies
# built): its timers, expiry sampling and incremental rehashing follow wall
# time and key counts, which callgrind stretches and random numbers vary,
# and blurred the per-send count by ±15 % between identical runs (also with
# `--hz 1`, kept). Sorted sets are kept as skip lists from their first
# entry (`--zset-max-listpack-entries 0`): the bench's one-second send
# windows hold ~128 sends at callgrind's pace, Redis's threshold between the
# two encodings, and a run whose sets flipped encoding counted ±20 k more or
# less per send. REDIS_COLLECT=all counts everything. SERVICE_CALLGRIND=0
# runs the service natively (any build): only redis-server's rows are then
# counted, in a fraction of the time.
#   scripts/ir-priced.sh LABEL=BINARY [LABEL=BINARY ...]
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-300}; N2=${N2:-1300}
BENCH=${BENCH:-target/release/examples/otp_bench}
OUT=${OUT:-target/ir-priced}
rm -rf "$OUT"; mkdir -p "$OUT"
. scripts/bench-env.sh
ENVS=("${BENCH_SERVICE_ENV[@]}" RUST_LOG=info OTP_SMS_GATEWAY=console)
bench_priced_env "$OUT"
CG=(valgrind --tool=callgrind --dump-instr=no --dump-line=no)
SERVICE_CALLGRIND=${SERVICE_CALLGRIND:-1}
REDIS_CG=(--collect-atstart=no --toggle-collect=processInputBuffer)
[ "${REDIS_COLLECT:-commands}" = all ] && REDIS_CG=()
# The total instructions of a callgrind output file.
total() { grep -E '^(summary|totals):' "$1" | tail -1 | awk '{print $2}'; }
run() { # name binary priced(0|1) sends
  local rp port extra=() rpid spid
  rp=$(shuf -i 30000-39999 -n 1); port=$(shuf -i 20000-29999 -n 1)
  "${CG[@]}" "${REDIS_CG[@]}" --callgrind-out-file="$OUT/$1.redis.cg" redis-server --bind 127.0.0.1 --port "$rp" \
    --save "" --appendonly no --loglevel warning --hz 1 --zset-max-listpack-entries 0 >/dev/null 2>&1 & rpid=$!
  for _ in $(seq 400); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.1; done
  [ "$3" = 1 ] && extra=("${PRICED_ENV[@]}")
  local under=("${CG[@]}" --callgrind-out-file="$OUT/$1.service.cg")
  [ "$SERVICE_CALLGRIND" = 1 ] || under=()
  env "${ENVS[@]}" "${extra[@]}" REDIS_URL="redis://127.0.0.1:$rp" OTP_LISTEN_ADDR="127.0.0.1:$port" OTP_METRICS_ADDR= \
    "${under[@]}" "$2" >"$OUT/$1.stdout" 2>"$OUT/$1.stderr" & spid=$!
  for _ in $(seq 600); do ss -Htln "sport = :$port" | grep -q . && break; sleep 0.1; done
  "$BENCH" load --target "http://127.0.0.1:$port" --connections 1 --in-flight 1 --duration 600 \
    --warmup 0 --requests "$4" --phones 1000 --label "$1" --json "$OUT/$1.json" --mix send >/dev/null
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true
  redis-cli -p "$rp" shutdown nosave >/dev/null 2>&1 || true; wait "$rpid" 2>/dev/null || true
}
for spec in "$@"; do
  label=${spec%%=*}; bin=$(realpath "${spec#*=}")
  for priced in 0 1; do
    name="$label-p$priced"
    run "$name-a" "$bin" "$priced" "$N1"; run "$name-b" "$bin" "$priced" "$N2"
    calls=$(( $(jq .calls "$OUT/$name-b.json") - $(jq .calls "$OUT/$name-a.json") ))
    s=0
    if [ "$SERVICE_CALLGRIND" = 1 ]; then
      s=$(( ($(total "$OUT/$name-b.service.cg") - $(total "$OUT/$name-a.service.cg")) / calls ))
    fi
    r=$(( ($(total "$OUT/$name-b.redis.cg") - $(total "$OUT/$name-a.redis.cg")) / calls ))
    echo "$label priced=$priced: service $s, redis $r, together $((s + r)) instructions per SendOtp (over $calls sends)"
  done
done
