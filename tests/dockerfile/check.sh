#!/usr/bin/env bash
# The Dockerfile without a Docker engine: lint it with hadolint, build the
# binary with the Dockerfile's own build command, and start that binary with
# the Dockerfile's ENV as the image's non-root user; it must report SERVING
# on the Dockerfile's port, serve health (and only health) on its health
# port, serve every EXPOSEd port on this host's non-loopback address while
# keeping a loopback API off it, and exit 0 on SIGTERM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dockerfile=$root/Dockerfile
grpcurl=${GRPCURL:-grpcurl}

hadolint "$dockerfile"

# The build command, exactly as the Dockerfile runs it.
build=$(python3 - "$dockerfile" <<'PY'
import re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
for line in text.splitlines():
    m = re.match(r"\s*RUN\s+(cargo build .*?)(\s*&&.*)?$", line)
    if m:
        print(m.group(1).strip())
        break
PY
)
[ -n "$build" ] || { echo "dockerfile: no cargo build in $dockerfile" >&2; exit 1; }
(cd "$root" && eval "$build --quiet")
bin=${CARGO_TARGET_DIR:-$root/target}/release/otp-service

# ENV and USER of the final stage.
mapfile -t env_vars < <(python3 - "$dockerfile" <<'PY'
import re, shlex, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
final = text.split("\nFROM ")[-1]
for line in final.splitlines():
    if line.strip().startswith("ENV "):
        for pair in shlex.split(line.strip()[4:]):
            print(pair)
PY
)
user=$(grep -E '^USER ' "$dockerfile" | tail -n 1 | awk '{print $2}')
listen=$(printf '%s\n' "${env_vars[@]}" | sed -n 's/^OTP_LISTEN_ADDR=//p')
port=${listen##*:}
[ -n "$port" ] || { echo "dockerfile: no OTP_LISTEN_ADDR in ENV" >&2; exit 1; }
health_listen=$(printf '%s\n' "${env_vars[@]}" | sed -n 's/^OTP_HEALTH_ADDR=//p')
health_port=${health_listen##*:}
[ -n "$health_port" ] || { echo "dockerfile: no OTP_HEALTH_ADDR in ENV: probes would need the API on the pod IP" >&2; exit 1; }
read -r -a exposed < <(grep -E '^EXPOSE ' "$dockerfile" | tail -n 1 | cut -d' ' -f2-)
case " ${exposed[*]} " in
  *" $health_port "*) ;;
  *) echo "dockerfile: the health port $health_port is not EXPOSEd (EXPOSE ${exposed[*]})" >&2; exit 1 ;;
esac

log=$(mktemp)
run_as=()
ran_as="uid $(id -u), NOT the image's user ${user%%:*}"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  # As the image's numeric user, with no supplementary groups: proves it needs no root.
  run_as=(setpriv --reuid="${user%%:*}" --regid="${user##*:}" --clear-groups)
  ran_as="the image's user, uid ${user%%:*}"
elif [ "${DOCKERFILE_CHECK_REQUIRE_USER:-}" = 1 ]; then
  echo "dockerfile: cannot run as uid ${user%%:*} (needs root and setpriv), and DOCKERFILE_CHECK_REQUIRE_USER=1" >&2
  exit 1
else
  echo "dockerfile: WARNING: not root or no setpriv: running as uid $(id -u), not as the image's user" >&2
fi
# The Dockerfile's ports are fixed and inside Linux's ephemeral range: on a
# machine that has just run the whole suite (or while this loop's own
# grpcurl connects from an ephemeral port), one may be a client socket's
# local port for a moment. Such a start is tried again, at most twice; any
# other failure fails at once.
pid=""
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for attempt in 1 2 3; do
  env -i PATH=/usr/bin:/bin "${env_vars[@]}" "${run_as[@]}" "$bin" 2>"$log" >/dev/null &
  pid=$!
  deadline=$(( $(date +%s) + 20 ))
  until "$grpcurl" -plaintext -d '{"service":"otp.v1.OtpService"}' "127.0.0.1:$port" \
      grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"'; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
      if [ "$attempt" -lt 3 ] && ! kill -0 "$pid" 2>/dev/null \
          && grep -q 'Address already in use' "$log"; then
        echo "dockerfile: a fixed port was briefly taken (attempt $attempt): $(grep -o 'cannot listen on [^"]*' "$log")" >&2
        sleep 1
        continue 2
      fi
      echo "dockerfile: the binary did not report SERVING with the Dockerfile's env:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  break
done
head -n 1 "$log" | python3 -c 'import json, sys; json.loads(sys.stdin.readline())' \
  || { echo "dockerfile: logs are not JSON as OTP_LOG_FORMAT says" >&2; exit 1; }

# Health on its own port, for the kubelet: the process and the OTP service.
# That port has no reflection, so grpcurl is given the (standard) health
# protocol's Check, as the kubelet knows it.
proto_dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$log" "$proto_dir"' EXIT
cat >"$proto_dir/health.proto" <<'PROTO'
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
PROTO
for service in "" otp.v1.OtpService; do
  "$grpcurl" -plaintext -import-path "$proto_dir" -proto health.proto \
    -d "{\"service\":\"$service\"}" "127.0.0.1:$health_port" \
    grpc.health.v1.Health/Check | grep -q '"SERVING"' \
    || { echo "dockerfile: health port $health_port does not report '$service' SERVING" >&2; exit 1; }
done
# ... and nothing but health there.
refused=$("$grpcurl" -plaintext -import-path "$root/proto" -proto otp/v1/otp.proto \
  -d '{"phone_number":"+14155550100"}' "127.0.0.1:$health_port" otp.v1.OtpService/SendOtp 2>&1) \
  && { echo "dockerfile: the health port serves OtpService: $refused" >&2; exit 1; }
grep -q Unimplemented <<<"$refused" \
  || { echo "dockerfile: SendOtp on the health port: expected Unimplemented, got: $refused" >&2; exit 1; }

# What the pod network sees: every EXPOSEd port, and not a loopback API.
connects() { python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)' "$1" "$2" 2>/dev/null; }
host_ip=$(hostname -I 2>/dev/null | awk '{print $1}')
if [ -n "$host_ip" ]; then
  for exposed_port in "${exposed[@]}"; do
    connects "$host_ip" "$exposed_port" || { echo "dockerfile: EXPOSEd port $exposed_port not served on $host_ip" >&2; exit 1; }
  done
  if [ "${listen%:*}" = 127.0.0.1 ] && connects "$host_ip" "$port"; then
    echo "dockerfile: the API ($listen) is reachable on $host_ip" >&2; exit 1
  fi
  reach="EXPOSE ${exposed[*]} served on $host_ip"
else
  reach="no non-loopback address here: EXPOSEd ports not checked from outside"
  echo "dockerfile: WARNING: $reach" >&2
fi

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || { echo "dockerfile: exit status $status after SIGTERM" >&2; cat "$log" >&2; exit 1; }
echo "dockerfile: hadolint clean; '$build' binary served the API on $listen and health alone on :$health_port as $ran_as ($reach), and stopped cleanly"
