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
  # git archive dates every file at its commit, older than the copied build's
  # fingerprints: the crate (and its generated protos) would look up to date.
  find "$OLD/src" -type f -exec touch {} +
fi
if [ ! -d "$OLD/src/target/debug" ] && [ -d target/debug ]; then
  mkdir -p "$OLD/src/target"
  cp -a target/debug "$OLD/src/target/debug"
fi
# With this checkout's dev profile (the old Cargo.toml kept the default one),
# so the copied dependencies are up to date and only the crate is compiled.
(cd "$OLD/src" && cargo build --locked --quiet --bin otp-service \
  --config 'profile.dev.debug="line-tables-only"' \
  --config 'profile.dev.package."*".debug=false')
cp "$OLD/src/target/debug/otp-service" "$OLD/otp-service"
echo "$OLD/otp-service: $FROM"
