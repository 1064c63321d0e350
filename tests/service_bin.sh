# Sourced by the shell checks that drive the service binary (tests/clients,
# tests/ops): sets `bin`. Without OTP_SERVICE_BIN it builds the release
# binary; with it, it says it reuses the binary as given and refuses one
# older than the sources (its pass would say nothing about this tree),
# unless OTP_SERVICE_BIN_STALE_OK=1.
# Usage: resolve_service_bin <repo root> <name for messages>
resolve_service_bin() {
  local root=$1 who=$2 newer
  bin=${OTP_SERVICE_BIN:-$root/target/release/otp-service}
  if [ -z "${OTP_SERVICE_BIN:-}" ]; then
    (cd "$root" && cargo build --release --locked --quiet --bin otp-service)
    return
  fi
  if [ ! -x "$bin" ]; then
    echo "$who: OTP_SERVICE_BIN=$bin is not an executable" >&2
    return 1
  fi
  newer=$(find "$root/src" "$root/proto" "$root/build.rs" "$root/Cargo.toml" "$root/Cargo.lock" \
    -newer "$bin" -type f -print -quit 2>/dev/null || true)
  if [ -n "$newer" ] && [ "${OTP_SERVICE_BIN_STALE_OK:-}" != 1 ]; then
    echo "$who: OTP_SERVICE_BIN=$bin is older than $newer: rebuild it, unset OTP_SERVICE_BIN, or set OTP_SERVICE_BIN_STALE_OK=1" >&2
    return 1
  fi
  echo "$who: using OTP_SERVICE_BIN=$bin as given (not rebuilt${newer:+; STALE: older than $newer})"
}
