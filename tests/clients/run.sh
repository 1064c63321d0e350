#!/usr/bin/env bash
# Polyglot conformance: one scenario (send, wrong guess, right guess, reuse,
# rate-limited send with RetryInfo, invalid phone with BadRequest; Python and
# Node also a code sent over WhatsApp) run by
# Python (grpcio), Node (@grpc/grpc-js) and grpcurl against the real
# binary on a private Redis, with a stand-in TextBee gateway (which also
# stands in for Meta's WhatsApp Cloud API); then a Python
# audit-event consumer (redis-py, XREADGROUP) reads what its own scenario did.
#
# Installs what it needs (idempotently): a Python venv from
# python/requirements.txt, node/node_modules from the lockfile.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../service_bin.sh
. "$root/tests/service_bin.sh"
resolve_service_bin "$root" clients

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
    [ "$(date +%s)" -lt "$deadline" ] || { echo "clients: timed out waiting for $what" >&2; return 1; }
    sleep 0.05
  done
}

# Python venv and Node modules: created once, reused while their pins hold.
python=$("$here/python/venv.sh")
if [ ! -d "$here/node/node_modules" ] || ! cmp -s "$here/node/package-lock.json" "$here/node/node_modules/.package-lock.json.ci"; then
  (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$here/node/package-lock.json" "$here/node/node_modules/.package-lock.json.ci"
fi

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --logfile "$work/redis.log" &
pids+=($!)
wait_until "redis-server" 10 redis-cli -p "$redis_port" ping

api_key=standin-key
python3 "$here/textbee_standin.py" --api-key "$api_key" --port-file "$work/textbee.port" &
pids+=($!)
wait_until "the stand-in gateway" 10 test -s "$work/textbee.port"
textbee="http://127.0.0.1:$(cat "$work/textbee.port")"

grpc_port=$(free_port)
env -i PATH="$PATH" \
  OTP_LISTEN_ADDR="127.0.0.1:$grpc_port" \
  OTP_METRICS_ADDR="" \
  OTP_LOG_FORMAT=json \
  OTP_HMAC_SECRET="polyglot-test-secret-polyglot-test-secret" \
  REDIS_URL="redis://127.0.0.1:$redis_port" \
  OTP_EVENTS_STREAM=events \
  OTP_REPLICA_ID=clients-test \
  SMS_SENDER_API="$textbee/api/v1/gateway/devices/standin-device/send-sms" \
  TEXTBEE_API_KEY="$api_key" \
  OTP_WHATSAPP_ROUTES="*=whatsapp_cloud" \
  OTP_WHATSAPP_TEMPLATE=otp_code \
  OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID=106540352242922 \
  OTP_WHATSAPP_CLOUD_ACCESS_TOKEN="$api_key" \
  OTP_WHATSAPP_CLOUD_BASE_URL="$textbee" \
  "$bin" >"$work/service.out" 2>"$work/service.log" &
pids+=($!)
grpcurl=${GRPCURL:-grpcurl}
wait_until "the service to report SERVING" 20 bash -c \
  "'$grpcurl' -plaintext -d '{\"service\":\"otp.v1.OtpService\"}' 127.0.0.1:$grpc_port grpc.health.v1.Health/Check | grep -q '\"SERVING\"'"

export OTP_ADDR="127.0.0.1:$grpc_port" TEXTBEE_STANDIN="$textbee" GRPCURL="$grpcurl"
passed=0 failed=0
run() { # name, phone, command...
  local name=$1; export PHONE=$2; shift 2
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "clients: $name scenario FAILED" >&2; fi
}
run python +14155550181 env GEN_DIR="$work/python-stubs" CHANNEL_PHONE=+14155550191 \
  "$python" "$here/python/scenario.py"
run node +14155550182 env CHANNEL_PHONE=+14155550192 node "$here/node/scenario.js"
run grpcurl +14155550183 bash "$here/grpcurl/scenario.sh"
run python-events +14155550184 env GEN_DIR="$work/python-stubs" \
  REDIS_URL="redis://127.0.0.1:$redis_port" OTP_REDIS_PREFIX=otp OTP_EVENTS_STREAM=events \
  "$python" "$here/python/events_consumer.py"

if [ "$failed" -ne 0 ]; then
  echo "--- service log ---" >&2; tail -n 50 "$work/service.log" >&2
fi
echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
