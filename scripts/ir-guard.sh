#!/usr/bin/env bash
# Instructions inside redis-server per SendOtp and per successful VerifyOtp
# (issue 30's "not worse than today" on the pumping guard's record), counted
# by valgrind's callgrind on redis-server only: deterministic on a shared,
# busy host. The service runs natively (any build profile: what Redis does
# per call does not depend on it). redis-server runs with --hz 1 (one timer
# tick a second: less background noise in the count).
# Per binary and shape: a warm-up, SEED sends, the counters zeroed, N sends
# (1 in flight), dumped; N successful verifies, dumped
# (scripts/ir_guard_load.py). Shapes: `spread` (numbers over 50 prefixes,
# +1 and an area code) and `busy` (one prefix, +1415, SEED sends into it
# first; the verifies are of the oldest seeded numbers).
#   scripts/ir-guard.sh LABEL=BINARY [LABEL=BINARY ...]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300}; SEED_BUSY=${SEED_BUSY:-20000}; SEED_SPREAD=${SEED_SPREAD:-0}
SHAPES=${SHAPES:-"spread busy"}
OUT=${OUT:-target/ir-guard}
mkdir -p "$OUT"
PYTHON=$(tests/clients/python/venv.sh)
ENVS=(OTP_HMAC_SECRET=bench-secret-bench-secret-bench-secret OTP_CODE_LENGTH=10 OTP_MAX_ATTEMPTS=20
  OTP_TTL_SECONDS=600 OTP_RESEND_COOLDOWN_SECONDS=0 OTP_SEND_LIMIT=1000 OTP_DAILY_SEND_LIMIT=10000
  OTP_CLIENT_SEND_LIMIT=100000 OTP_ANONYMOUS_SEND_LIMIT=100000 OTP_GLOBAL_SEND_LIMIT=0
  OTP_ANONYMOUS_VERIFY_LIMIT=100000 OTP_CLIENT_VERIFY_LIMIT=100000 OTP_GLOBAL_VERIFY_LIMIT=0
  OTP_PUMPING_MIN_SENDS=1000000 RUST_LOG=warn OTP_SMS_GATEWAY=console)
total() { grep -E '^(summary|totals):' "$1" | tail -1 | awk '{print $2}'; }
run() { # name binary shape seed
  local rp port rpid spid cg=$OUT/$1.redis.cg
  rm -f "$cg"*
  rp=$(shuf -i 30000-39999 -n 1); port=$(shuf -i 20000-29999 -n 1)
  valgrind --tool=callgrind --dump-instr=no --dump-line=no --callgrind-out-file="$cg" \
    redis-server --bind 127.0.0.1 --port "$rp" --hz 1 --save "" --appendonly no --loglevel warning \
    >"$OUT/$1.redis.log" 2>&1 & rpid=$!
  for _ in $(seq 400); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.1; done
  env "${ENVS[@]}" REDIS_URL="redis://127.0.0.1:$rp" OTP_LISTEN_ADDR="127.0.0.1:$port" OTP_METRICS_ADDR= \
    "$2" >"$OUT/$1.stdout" 2>"$OUT/$1.stderr" & spid=$!
  for _ in $(seq 600); do ss -Htln "sport = :$port" | grep -q . && break; sleep 0.1; done
  cat >"$OUT/mark.sh" <<MARK
#!/bin/sh
if [ "\$1" = zero ]; then exec callgrind_control -z $rpid >/dev/null; fi
exec callgrind_control -d "\$1" $rpid >/dev/null
MARK
  chmod +x "$OUT/mark.sh"
  OTP_ADDR="127.0.0.1:$port" SHAPE=$3 SEED=$4 N=$N CODES="$OUT/$1.stdout" MARK="$OUT/mark.sh" \
    GEN_DIR="$OUT/stubs" "$PYTHON" scripts/ir_guard_load.py >"$OUT/$1.json"
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true
  redis-cli -p "$rp" shutdown nosave >/dev/null 2>&1 || true; wait "$rpid" 2>/dev/null || true
  local send verify
  send=$(grep -l '^desc: Trigger: dump send' "$cg".* | head -1)
  verify=$(grep -l '^desc: Trigger: dump verify' "$cg".* | head -1)
  echo "$1: redis $(( $(total "$send") / N )) per SendOtp, $(( $(total "$verify") / N )) per successful VerifyOtp ($(jq -c '{send: .send.ok, verify: .verify.ok, failed: [.send.failed, .verify.failed]}' "$OUT/$1.json"))"
}
for spec in "$@"; do
  label=${spec%%=*}; bin=$(realpath "${spec#*=}")
  for shape in $SHAPES; do
    seed=$SEED_SPREAD; [ "$shape" = busy ] && seed=$SEED_BUSY
    run "$label-$shape" "$bin" "$shape" "$seed"
  done
done
