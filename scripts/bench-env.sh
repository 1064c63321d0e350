# Sourced by the benchmark scripts (bench.sh, ab-send.sh, ab-priced.sh,
# ir-priced.sh): the service settings every bench run uses, and the prices
# file and spend caps of the "priced" runs, so the scripts measure the same
# service. bench.sh says why each limit is what it is.
# shellcheck shell=bash
BENCH_SECRET=bench-secret-bench-secret-bench-secret
# shellcheck disable=SC2034 # used by the scripts that source this file
BENCH_SERVICE_ENV=("OTP_HMAC_SECRET=$BENCH_SECRET" OTP_CODE_LENGTH=10 OTP_MAX_ATTEMPTS=20
  OTP_TTL_SECONDS=600 OTP_RESEND_COOLDOWN_SECONDS=0 OTP_SEND_WINDOW_SECONDS=1
  OTP_SEND_LIMIT=1000 OTP_DAILY_SEND_LIMIT=10000 OTP_CLIENT_SEND_LIMIT=100000
  OTP_ANONYMOUS_SEND_LIMIT=100000 OTP_GLOBAL_SEND_LIMIT=0
  OTP_VERIFY_WINDOW_SECONDS=1 OTP_ANONYMOUS_VERIFY_LIMIT=100000
  OTP_CLIENT_VERIFY_LIMIT=100000 OTP_GLOBAL_VERIFY_LIMIT=0
  OTP_PUMPING_MIN_SENDS=1000000)

# Writes DIR/prices.toml and sets PRICED_ENV: every send priced (console at
# 0.0083 a segment to the bench's +1 numbers) and reserved against the
# hourly and daily caps, set far above what a run spends so none refuses.
bench_priced_env() {
  cat >"$1/prices.toml" <<'TOML'
currency = "USD"
[console]
"*" = { sms = "0.0500" }
US = { sms = "0.0083" }
TOML
  # shellcheck disable=SC2034
  PRICED_ENV=("OTP_PRICES_FILE=$1/prices.toml" OTP_SPEND_LIMIT_PER_HOUR=100000000
    OTP_SPEND_LIMIT_PER_DAY=1000000000)
}
