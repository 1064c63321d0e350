#!/usr/bin/env bash
# What audit events cost: VerifyOtp on a private Redis with and without
# OTP_EVENTS_STREAM, interleaved rounds, reported as CPU time per call of the
# service and of redis-server (the XADDs run there), which a busy shared
# machine disturbs far less than requests per second. Every VerifyOtp is a
# decision, so each call appends one event. The server is examples/bench_server
# (the real service with a gateway that discards messages), so the guesses do
# not know the codes: each number gets wrong guesses until it is locked, every
# one of them still a store call and an event.
#
#   scripts/bench-events.sh                         3 rounds of 5 s each
#   BENCH_ROUNDS=1 BENCH_DURATION=3 scripts/bench-events.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-5}
PHONES=${BENCH_PHONES:-20000}
OUT=${BENCH_OUT:-target/bench-events}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}

cargo build --release --locked --quiet --example otp_bench --example bench_server
SERVICE=target/release/examples/bench_server
BENCH=target/release/examples/otp_bench

rm -rf "$OUT" && mkdir -p "$OUT"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# utime + stime of PID, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

REDIS_PORT=$(free_port)
taskset -c "$SERVER_CPU" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
  --appendonly no --loglevel warning >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
until rcli ping >/dev/null 2>&1; do sleep 0.05; done

# run NAME ENV…: one service, one VerifyOtp load run, then stop.
run() {
  local name=$1; shift
  rcli flushall >/dev/null
  local port; port=$(free_port)
  # The settings of scripts/bench.sh (limits lifted, not off).
  env -i PATH="$PATH" OTP_HMAC_SECRET=bench-secret-bench-secret-bench-secret \
    OTP_CODE_LENGTH=10 OTP_MAX_ATTEMPTS=20 OTP_TTL_SECONDS=600 OTP_RESEND_COOLDOWN_SECONDS=0 \
    OTP_SEND_LIMIT=1000 OTP_DAILY_SEND_LIMIT=10000 OTP_CLIENT_SEND_LIMIT=100000 \
    OTP_ANONYMOUS_SEND_LIMIT=100000 OTP_GLOBAL_SEND_LIMIT=100000 OTP_PUMPING_MIN_SENDS=1000000 \
    OTP_METRICS_ADDR= OTP_SMS_GATEWAY=console \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT" OTP_LISTEN_ADDR="127.0.0.1:$port" "$@" \
    taskset -c "$SERVER_CPU" "$SERVICE" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
  local pid=$!
  PIDS+=("$pid")
  taskset -c "$CLIENT_CPU" "$BENCH" load --target "http://127.0.0.1:$port" \
    --connections 4 --in-flight 16 --duration "$DURATION" --warmup 1 --phones "$PHONES" \
    --mix verify --server-pid "$pid" \
    --label "$name" --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 &
  local bench=$!
  # Redis CPU from the end of seeding: the warm-up second's calls are
  # added to the measured ones below (at the measured rate).
  until grep -q "seeded" "$OUT/$name.txt" 2>/dev/null || ! kill -0 "$bench" 2>/dev/null; do sleep 0.05; done
  local before; before=$(cpu_ticks "$REDIS_PID")
  wait "$bench"
  local after; after=$(cpu_ticks "$REDIS_PID")
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  local calls; calls=$(jq '.calls + .rps * 1' "$OUT/$name.json")
  printf '%-22s %8.0f rps  service %6.1f µs/call  redis %6.1f µs/call  p50 %6.0f µs  events in stream %s\n' \
    "$name" "$(jq .rps "$OUT/$name.json")" "$(jq .server.cpu_us_per_call "$OUT/$name.json")" \
    "$(echo "($after - $before) * 1000000 / $TICK / $calls" | bc -l)" \
    "$(jq .latency_us.p50 "$OUT/$name.json")" "$(rcli xlen otp:events)"
}

for round in $(seq "$ROUNDS"); do
  run "off-$round"
  run "events-$round" OTP_EVENTS_STREAM=events
done
