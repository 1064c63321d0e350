#!/usr/bin/env bash
# Bytes per number texted, in Redis and in the memory store (issue 30), as a
# new user would measure them: the release binary, the console gateway, N
# distinct numbers each texted SENDS times with its own client_key, limits
# raised so that no send is refused (any refusal fails the run).
#
#   scripts/bytes.sh                       # 20 000 numbers, loads of 1 and 5 sends
#   BYTES_NUMBERS=200000 scripts/bytes.sh  # the larger load
#   BYTES_BIN=/path/to/otp-service scripts/bytes.sh   # another build (e.g. an old one)
#
# Redis: a private redis-server (never 6379) per load; `INFO memory`
# used_memory after the load minus before it, divided by N. Before is read
# after a warm-up of 500 other numbers, so the service's connections and the
# scripts' cache are not counted. The pumping guard's per-prefix keys are
# part of the figure (as deployed: the guard is on). Each part's share
# (scripts/bytes_parts.py: MEMORY USAGE of its keys, over all numbers texted,
# the warm-up's included) is printed beside it: the parts live for different
# times (a day, a send window, the guard's window), which sizing needs.
# Memory store: the service's RssAnon (/proc/PID/status) after minus before,
# divided by N, same warm-up; then the same load straight on the store,
# every allocation counted (examples/memory_bytes.rs: no allocator slack or
# page noise; the guard's share apart), unless BYTES_COUNTED=0.
# Needs redis-server, redis-cli, python3 (the grpcio venv of tests/clients).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

NUMBERS=${BYTES_NUMBERS:-20000}
LOADS=${BYTES_LOADS:-"1 5"}
STORES=${BYTES_STORES:-"redis memory"}
OUT=${BYTES_OUT:-target/bytes}
BIN=${BYTES_BIN:-}
mkdir -p "$OUT"

if [ -z "$BIN" ]; then
  cargo build --release --locked --quiet --bin otp-service
  BIN=target/release/otp-service
fi
PYTHON=$(tests/clients/python/venv.sh)

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() {
  local port
  for port in $(shuf -i 20000-29999 -n 100); do
    if ! ss -Htan | awk '{print $4}' | grep -q ":$port\$"; then echo "$port"; return; fi
  done
  echo "bytes.sh: no free port" >&2; return 1
}

wait_listening() { # PORT PID
  for _ in $(seq 1 300); do
    if ss -Htln | awk '{print $4}' | grep -q ":$1\$"; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "bytes.sh: process $2 exited" >&2; return 1; }
    sleep 0.1
  done
  echo "bytes.sh: nothing listens on $1" >&2; return 1
}

used_memory() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '/^used_memory:/{print $2}'; }
rss_anon() { awk '/^RssAnon:/{print $2 * 1024}' "/proc/$1/status"; }

# Limits raised so no send of the load is refused; every limit still counts.
# The pumping guard counts every send (its keys are part of the figure) but
# needs a million judged sends for a verdict: the load's numbers share one
# prefix and none is verified, so at its default (20) it would suspend the
# prefix once the first codes' lifetime has passed (a run over 2 minutes).
service_env() { # SENDS
  local sends=$1
  echo "OTP_HMAC_SECRET=bytes-secret-bytes-secret-bytes-secret OTP_SMS_GATEWAY=console \
OTP_RESEND_COOLDOWN_SECONDS=0 OTP_SEND_LIMIT=$((sends > 5 ? sends : 5)) \
OTP_DAILY_SEND_LIMIT=$((sends > 10 ? sends : 10)) OTP_CLIENT_SEND_LIMIT=20 \
OTP_GLOBAL_SEND_LIMIT=0 OTP_PUMPING_MIN_SENDS=1000000 RUST_LOG=warn"
}

load() { # ADDR NUMBERS SENDS FIRST
  OTP_ADDR=$1 NUMBERS=$2 SENDS=$3 FIRST=$4 GEN_DIR="$OUT/stubs" "$PYTHON" scripts/bytes_load.py
}

# measure STORE SENDS: prints "STORE SENDS bytes_per_number [guard_share keys_per_number]".
measure() {
  local store=$1 sends=$2 redis_port="" redis_pid="" env port pid before after
  env=$(service_env "$sends")
  if [ "$store" = redis ]; then
    redis_port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
      --maxmemory-policy noeviction >"$OUT/redis-$sends.log" 2>&1 &
    redis_pid=$!; PIDS+=("$redis_pid")
    wait_listening "$redis_port" "$redis_pid"
    env="$env REDIS_URL=redis://127.0.0.1:$redis_port"
  fi
  port=$(free_port)
  # shellcheck disable=SC2086 # env is a list of NAME=value words
  env $env OTP_LISTEN_ADDR="127.0.0.1:$port" OTP_METRICS_ADDR="127.0.0.1:$(free_port)" \
    "$BIN" >"$OUT/$store-$sends.stdout" 2>"$OUT/$store-$sends.stderr" &
  pid=$!; PIDS+=("$pid")
  wait_listening "$port" "$pid"
  load "127.0.0.1:$port" 500 "$sends" 10000000 >/dev/null
  if [ "$store" = redis ]; then before=$(used_memory "$redis_port"); else before=$(rss_anon "$pid"); fi
  load "127.0.0.1:$port" "$NUMBERS" "$sends" 0 >"$OUT/$store-$sends.load.json"
  if [ "$store" = redis ]; then after=$(used_memory "$redis_port"); else after=$(rss_anon "$pid"); fi
  local per=$(((after - before) / NUMBERS)) extra="" lost
  lost=$(sed -n 's/.*"UNAVAILABLE": \([0-9]*\).*/\1/p' "$OUT/$store-$sends.load.json")
  [ -n "$lost" ] && extra=" unavailable=$lost"
  if [ "$store" = redis ]; then
    local keys
    keys=$(redis-cli -p "$redis_port" dbsize)
    extra="$extra $(python3 scripts/bytes_parts.py "$redis_port" $((NUMBERS + 500)) "$NUMBERS" "$before") keys_per_number=$(echo "scale=2; $keys / ($NUMBERS + 500)" | bc)"
    redis-cli -p "$redis_port" --scan | head -5 | sed "s/^/  sample key ($store, $sends sends): /" >&2
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ -n "$redis_pid" ] && { kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; }
  echo "$store $sends $per$extra"
}

echo "bytes per number: $NUMBERS numbers, $("$BIN" --version 2>/dev/null || echo "$BIN"), redis-server $(redis-server --version | grep -o 'v=[0-9.]*' | cut -d= -f2)"
echo "| store | sends per number | bytes per number | detail |"
echo "| --- | --- | --- | --- |"
for store in $STORES; do
  for sends in $LOADS; do
    result=$(measure "$store" "$sends") || {
      echo "bytes.sh: the $store load of $sends sends per number failed:" >&2
      cat "$OUT/$store-$sends.load.json" >&2
      exit 1
    }
    read -r s n per detail <<<"$result"
    echo "| $s | $n | $per | ${detail:-} |"
    if [ "$s" = memory ] && [ "${BYTES_COUNTED:-1}" != 0 ]; then
      # The dev build: the layout (what is counted) is the release one's.
      counted=$(cargo run --locked --quiet --example memory_bytes -- "$NUMBERS" "$n")
      echo "|  |  | counted: ${counted#*: } | |"
    fi
    if [ "$s" = redis ] && [ "$n" = 1 ]; then
      echo "|  |  | capacity: $((1024 * 1024 * 1024 / per)) numbers per GiB of Redis used_memory | |"
    fi
  done
done
