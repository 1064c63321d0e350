#!/usr/bin/env bash
# A/B of SendOtp through two builds of the service binary (console gateway),
# interleaved, 3 rounds, memory and a private Redis: scripts/ab-send.sh OLD NEW.
# Servers and redis-server on CPU 0, the load generator on CPU 1 (as bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD_ARG=$(realpath "$1"); NEW_ARG=$(realpath "$2")
OLD=$OLD_ARG NEW=$NEW_ARG BENCH=target/release/examples/otp_bench OUT=target/ab-send; rm -rf $OUT; mkdir -p $OUT
. scripts/bench-env.sh
ENVS=("${BENCH_SERVICE_ENV[@]}" RUST_LOG=info)
RP=$(shuf -i 30000-39999 -n 1)
nice -n -10 taskset -c 0 redis-server --bind 127.0.0.1 --port $RP --save "" --appendonly no --loglevel warning >/dev/null 2>&1 & RPID=$!
trap 'kill $RPID 2>/dev/null || true' EXIT
sleep 0.5
run() { # label bin store
  local port=$(shuf -i 20000-29999 -n 1) extra=()
  if [ "$3" = redis ]; then redis-cli -p $RP flushall >/dev/null; extra=(REDIS_URL=redis://127.0.0.1:$RP OTP_SMS_GATEWAY=console); fi
  env "${ENVS[@]}" "${extra[@]}" OTP_LISTEN_ADDR=127.0.0.1:$port OTP_METRICS_ADDR= nice -n -10 taskset -c 0 "$2" >$OUT/$1.stdout 2>$OUT/$1.stderr & local pid=$!
  for _ in $(seq 200); do ss -Htln "sport = :$port" | grep -q . && break; sleep 0.05; done
  nice -n -10 taskset -c 1 $BENCH load --target http://127.0.0.1:$port --connections 4 --in-flight 16 --duration 5 --warmup 1 --phones 40000 --server-pid $pid --label $1 --json $OUT/$1.json --mix send >/dev/null
  kill -INT $pid; wait $pid 2>/dev/null || true
}
for r in 1 2 3; do
  for s in memory redis; do run old-$s-$r $OLD $s; run new-$s-$r $NEW $s; done
done
for s in memory redis; do for v in old new; do printf "%-14s " $v-$s; jq -s -c '[(map(.rps)|sort|.[length/2|floor]|round), (map(.server.cpu_us_per_call)|sort|.[length/2|floor]*10|round/10), (map(.errors)|add)]' $OUT/$v-$s-[0-9].json; done; done
