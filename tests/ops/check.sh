#!/usr/bin/env bash
# Operations kit check: the alert rules pass promtool (check + unit tests),
# and every rule expression and every Grafana panel query parses and returns
# data on a REAL Prometheus (Debian's package) scraping the service binary on
# a private Redis, after scripted traffic with grpcurl against a stand-in SMS
# gateway that fails one number (and stands in for Meta's WhatsApp Cloud API,
# with numbers "not on WhatsApp" that fall through to SMS), and SMS pumping
# that the guard suspends, with a prices file and spend caps (the spend
# series, on both channels).
#
# Installs Debian's prometheus package if promtool/prometheus are missing.
# Uses OTP_SERVICE_BIN if set, else builds target/release/otp-service.
# Series another change is adding (PENDING_METRICS, comma-separated; none
# now) may be reported as "PENDING metric" while the service does not export
# them; once it does, their queries must return data like the rest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
grpcurl=${GRPCURL:-grpcurl}
PENDING_METRICS=
started=$EPOCHREALTIME
step() { awk -v what="$1" -v t0="$started" -v t1="$EPOCHREALTIME" 'BEGIN { printf "ops: %-44s (%.1f s)\n", what, t1 - t0 }'; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "ops: installing Debian's prometheus package (promtool, prometheus)"
  # apt-get update only when the package lists are missing or stale.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || {
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  }
fi
# shellcheck source=../service_bin.sh
. "$root/tests/service_bin.sh"
resolve_service_bin "$root" ops

echo "ops: $(promtool --version 2>&1 | head -n 1)"
promtool check rules "$root/deploy/prometheus/rules.yml"
(cd "$root/deploy/prometheus" && promtool test rules rules_test.yml)
step "promtool check + unit tests passed"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_until() { # description, deadline seconds, command...
  local what=$1 deadline=$(( $(date +%s) + $2 )); shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "ops: timed out waiting for $what" >&2; return 1; }
    sleep 0.1
  done
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --logfile "$work/redis.log" &
pids+=($!)
failing_phone=+14155550290
python3 "$root/tests/clients/textbee_standin.py" --api-key standin-key --port-file "$work/textbee.port" \
  --fail-recipient "$failing_phone=503" \
  --not-on-whatsapp +14155550218 --not-on-whatsapp +14155550228 &
pids+=($!)
wait_until "redis-server" 10 redis-cli -p "$redis_port" ping
wait_until "the stand-in gateway" 10 test -s "$work/textbee.port"
textbee="http://127.0.0.1:$(cat "$work/textbee.port")"

# Prices and generous spend caps: the spend series (estimates by country,
# the caps in force, refusals at 0) appear without refusing the traffic.
cat >"$work/prices.toml" <<EOF
currency = "USD"
[textbee]
"*" = { sms = "0.05" }
US = { sms = "0.0079" }
[whatsapp_cloud]
"*" = { whatsapp = "0.0135" }
US = { whatsapp = "0.0040" }
EOF

grpc_port=$(free_port)
metrics_port=$(free_port)
env -i PATH="$PATH" \
  OTP_LISTEN_ADDR="127.0.0.1:$grpc_port" \
  OTP_METRICS_ADDR="127.0.0.1:$metrics_port" \
  OTP_HMAC_SECRET="ops-check-secret-ops-check-secret-0123" \
  OTP_SMS_MAX_RETRIES=0 \
  OTP_TTL_SECONDS=4 \
  OTP_GRACE_SECONDS=0 \
  OTP_PUMPING_MIN_SENDS=2 \
  OTP_PUMPING_WINDOW_SECONDS=60 \
  OTP_PRICES_FILE="$work/prices.toml" \
  OTP_SPEND_LIMIT_PER_HOUR=100 \
  OTP_SPEND_LIMIT_PER_DAY=1000 \
  REDIS_URL="redis://127.0.0.1:$redis_port" \
  SMS_SENDER_API="$textbee/api/v1/gateway/devices/standin-device/send-sms" \
  TEXTBEE_API_KEY=standin-key \
  OTP_WHATSAPP_ROUTES="*=whatsapp_cloud" \
  OTP_CHANNEL_FALLBACK="whatsapp>sms" \
  OTP_WHATSAPP_TEMPLATE=otp_code \
  OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID=106540352242922 \
  OTP_WHATSAPP_CLOUD_ACCESS_TOKEN=standin-key \
  OTP_WHATSAPP_CLOUD_BASE_URL="$textbee" \
  "$bin" >"$work/service.out" 2>"$work/service.log" &
pids+=($!)

prom_port=$(free_port)
prometheus_url="http://127.0.0.1:$prom_port"
cat >"$work/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$root/deploy/prometheus/rules.yml"]
scrape_configs:
  - job_name: otp-service
    static_configs: [{targets: ["127.0.0.1:$metrics_port"]}]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn 2>"$work/prometheus.log" &
pids+=($!)

wait_until "the service to report SERVING" 20 bash -c \
  "'$grpcurl' -plaintext -d '{\"service\":\"otp.v1.OtpService\"}' 127.0.0.1:$grpc_port grpc.health.v1.Health/Check | grep -q '\"SERVING\"'"
wait_until "Prometheus to be ready" 20 curl -fsS "$prometheus_url/-/ready"
step "service, Redis, gateway and Prometheus up"

# Ingested: Prometheus has scraped at least $1 finished RPCs.
ingested() {
  curl -fsS --get --data-urlencode 'query=sum(otp_grpc_requests_total) >= '"$1" "$prometheus_url/api/v1/query" |
    grep -q '"value"'
}
# Two rounds with a scrape between them, so every counter the traffic
# creates has moved between two samples and its rate is not zero.
for round in 1 2; do
  if ! OTP_ADDR="127.0.0.1:$grpc_port" TEXTBEE_STANDIN="$textbee" ROUND=$round \
    FAILING_PHONE="$failing_phone" GRPCURL="$grpcurl" bash "$here/traffic.sh"; then
    echo "--- service log ---" >&2; tail -n 30 "$work/service.log" >&2
    exit 1
  fi
  wait_until "Prometheus to scrape round $round" 20 ingested $((round * 10))
  step "traffic round $round scraped"
done

status=0
python3 "$here/check_queries.py" --prometheus "$prometheus_url" \
  --metrics "http://127.0.0.1:$metrics_port/metrics" \
  --dashboard "$root/deploy/grafana/otp-service.json" \
  --pending "$PENDING_METRICS" --deadline 20 || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- prometheus log ---" >&2; tail -n 20 "$work/prometheus.log" >&2
fi
step "queries checked"

# Spend carries the channel that carried each send: WhatsApp messages at
# Meta's price, and the fall-throughs and plain sends as SMS at TextBee's.
page=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics")
for carrier in 'channel="whatsapp".*provider="whatsapp_cloud"|provider="whatsapp_cloud".*channel="whatsapp"' \
  'channel="sms".*provider="textbee"|provider="textbee".*channel="sms"'; do
  if ! grep '^otp_spend_estimated_micros_total{' <<<"$page" | grep -Eq "$carrier"; then
    echo "ops: no spend series matching $carrier" >&2
    status=1
  fi
done
step "spend by channel checked"
exit "$status"
