#!/usr/bin/env bash
# The Dockerfile without a Docker engine: lint it with hadolint, build the
# binary with the Dockerfile's own build command, and start that binary with
# the Dockerfile's ENV as the image's non-root user; it must report SERVING
# on the Dockerfile's port and exit 0 on SIGTERM.
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
bin=$root/target/release/otp-service

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
env -i PATH=/usr/bin:/bin "${env_vars[@]}" "${run_as[@]}" "$bin" 2>"$log" >/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT

deadline=$(( $(date +%s) + 20 ))
until "$grpcurl" -plaintext -d '{"service":"otp.v1.OtpService"}' "127.0.0.1:$port" \
    grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"'; do
  if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
    echo "dockerfile: the binary did not report SERVING with the Dockerfile's env:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
head -n 1 "$log" | python3 -c 'import json, sys; json.loads(sys.stdin.readline())' \
  || { echo "dockerfile: logs are not JSON as OTP_LOG_FORMAT says" >&2; exit 1; }

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || { echo "dockerfile: exit status $status after SIGTERM" >&2; cat "$log" >&2; exit 1; }
echo "dockerfile: hadolint clean; '$build' binary served on :$port as $ran_as, and stopped cleanly"
