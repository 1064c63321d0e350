#!/usr/bin/env bash
# Builds the version before issue 30's compact Redis layout (652cea2) into
# target/old/otp-service, for the rolling-upgrade test
# (tests/it/redis_upgrade.rs, which skips without it). That commit's files
# (git archive: no worktree registered in the repository) in target/old/src,
# with a copy of this checkout's debug build directory so that only the
# crate itself is compiled (a few minutes, not a cold build's twelve).
set -euo pipefail
cd "$(dirname "$0")/.."
FROM=${OLD_COMMIT:-652cea2}
OLD=target/old
mkdir -p "$OLD"
if [ ! -f "$OLD/src/Cargo.toml" ]; then
  mkdir -p "$OLD/src"
  git archive "$FROM" | tar -x -C "$OLD/src"
fi
if [ ! -d "$OLD/src/target/debug" ] && [ -d target/debug ]; then
  mkdir -p "$OLD/src/target"
  cp -a target/debug "$OLD/src/target/debug"
fi
(cd "$OLD/src" && cargo build --locked --quiet --bin otp-service)
cp "$OLD/src/target/debug/otp-service" "$OLD/otp-service"
echo "$OLD/otp-service: $FROM"
