#!/usr/bin/env bash
# SendOtp with prices and spend caps on vs off (issue 29's target: within
# 10 %), through one or more builds of the service binary, interleaved:
#   scripts/ab-priced.sh LABEL=BINARY [LABEL=BINARY ...]
# Per round and build: unpriced, then priced (bench.sh's prices file and
# caps: every send priced and reserved in the hourly and daily caps, set far
# above what a run spends). On a private Redis (STORES=redis, the default;
# "memory redis" for both). Servers and redis-server on CPU 0, the load
# generator on CPU 1 (as bench.sh and ab-send.sh); ROUNDS rounds (3).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
STORES=${STORES:-redis}
BENCH=${BENCH:-target/release/examples/otp_bench}
OUT=${OUT:-target/ab-priced}
rm -rf "$OUT"; mkdir -p "$OUT"
LABELS=(); BINS=()
for spec in "$@"; do LABELS+=("${spec%%=*}"); BINS+=("$(realpath "${spec#*=}")"); done
[ ${#LABELS[@]} -gt 0 ] || { echo "usage: $0 LABEL=BINARY ..." >&2; exit 2; }
. scripts/bench-env.sh
ENVS=("${BENCH_SERVICE_ENV[@]}" RUST_LOG=info)
bench_priced_env "$OUT"
RP=$(shuf -i 30000-39999 -n 1)
nice -n -10 taskset -c 0 redis-server --bind 127.0.0.1 --port "$RP" --save "" --appendonly no --loglevel warning >/dev/null 2>&1 & RPID=$!
trap 'kill $RPID 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.05; done
# redis-server's CPU time so far (user + system, in clock ticks): what it
# spent per SendOtp is the other half of a send's cost on Redis, and unlike
# commandstats' usec it does not count time the process was not running.
redis_cpu_ticks() { awk '{print $14 + $15}' "/proc/$RPID/stat"; }
run() { # label binary store priced(0|1)
  local port extra=() pid
  port=$(shuf -i 20000-29999 -n 1)
  if [ "$3" = redis ]; then
    redis-cli -p "$RP" flushall >/dev/null; redis-cli -p "$RP" config resetstat >/dev/null
    extra=(REDIS_URL="redis://127.0.0.1:$RP")
  fi
  if [ "$4" = 1 ]; then extra+=("${PRICED_ENV[@]}"); fi
  local redis_cpu_before; redis_cpu_before=$(redis_cpu_ticks)
  env "${ENVS[@]}" "${extra[@]}" OTP_SMS_GATEWAY=console OTP_LISTEN_ADDR="127.0.0.1:$port" OTP_METRICS_ADDR= \
    nice -n -10 taskset -c 0 "$2" >"$OUT/$1.stdout" 2>"$OUT/$1.stderr" & pid=$!
  for _ in $(seq 200); do ss -Htln "sport = :$port" | grep -q . && break; sleep 0.05; done
  nice -n -10 taskset -c 1 "$BENCH" load --target "http://127.0.0.1:$port" --connections 4 --in-flight 16 \
    --duration 5 --warmup 1 --phones 40000 --server-pid "$pid" --label "$1" --json "$OUT/$1.json" --mix send >/dev/null
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  # Redis's own count of script calls (warm-up and seeding included):
  # calls and µs per call, beside the load generator's report.
  if [ "$3" = redis ]; then
    redis-cli -p "$RP" info commandstats | tr -d '\r' | grep '^cmdstat_evalsha:' >"$OUT/$1.evalsha" || true
    echo $(($(redis_cpu_ticks) - redis_cpu_before)) >"$OUT/$1.redis-ticks"
  fi
}
for r in $(seq "$ROUNDS"); do
  for s in $STORES; do
    for i in "${!LABELS[@]}"; do
      run "${LABELS[$i]}-$s-plain-$r" "${BINS[$i]}" "$s" 0
      run "${LABELS[$i]}-$s-priced-$r" "${BINS[$i]}" "$s" 1
    done
  done
done
# Per build and store: median rps and µs of service CPU per call, unpriced
# and priced, each round's figures, and the priced change.
for s in $STORES; do for l in "${LABELS[@]}"; do
  jq -s -r --arg name "$l $s" '
    def med: sort | .[length / 2 | floor];
    (map(select(.label | test("-plain-")))) as $a | (map(select(.label | test("-priced-")))) as $b |
    [($a | map(.rps) | med), ($a | map(.server.cpu_us_per_call) | med),
     ($b | map(.rps) | med), ($b | map(.server.cpu_us_per_call) | med)] as [$ar, $au, $br, $bu] |
    "\($name): plain \($ar | round) rps \($au * 10 | round / 10) µs/call " +
    "(rounds \($a | map(.rps | round)) \($a | map(.server.cpu_us_per_call * 10 | round / 10))); " +
    "priced \($br | round) rps \($bu * 10 | round / 10) µs/call " +
    "(rounds \($b | map(.rps | round)) \($b | map(.server.cpu_us_per_call * 10 | round / 10))); " +
    "priced: rps \((($br / $ar - 1) * 1000 | round) / 10) %, µs \((($bu / $au - 1) * 1000 | round) / 10) %; " +
    "errors \([.[] | .errors] | add)"' "$OUT/$l-$s"-*.json
done; done
# EVALSHA per SendOtp (Redis's count over the load generator's calls; the
# warm-up second's calls are not in `calls`, so this reads a little high).
for f in "$OUT"/*-redis-*.evalsha; do
  [ -f "$f" ] || continue
  run=$(basename "$f" .evalsha)
  calls=$(sed 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/' "$f"); usec=$(sed 's/.*usec_per_call=\([0-9.]*\).*/\1/' "$f")
  ticks=$(cat "$OUT/$run.redis-ticks")
  # redis-server CPU per script call, warm-up included on both sides.
  jq -r --arg run "$run" --argjson calls "$calls" --arg usec "$usec" --argjson ticks "$ticks" --argjson hz "$(getconf CLK_TCK)" \
    '"\($run): \($calls / .calls * 100 | round / 100) EVALSHA per call (redis \($usec) µs each; redis-server CPU \($ticks / $hz * 1e6 / $calls | round) µs per EVALSHA)"' "$OUT/$run.json"
done
