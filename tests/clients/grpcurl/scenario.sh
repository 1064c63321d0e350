#!/usr/bin/env bash
# otp-service from the shell with grpcurl, through server reflection (no
# proto file): the usage example and the conformance test.
# Environment: OTP_ADDR (host:port), TEXTBEE_STANDIN (stand-in SMS gateway
# URL), PHONE (a number no other client uses), GRPCURL (optional path).
set -euo pipefail
grpcurl=${GRPCURL:-grpcurl}
fail() { echo "grpcurl scenario: $*" >&2; exit 1; }
call() { "$grpcurl" -plaintext -max-time 10 -d "$2" "$OTP_ADDR" "otp.v1.OtpService/$1" 2>&1; }
expect() { grep -qE -- "$2" <<<"$1" || fail "expected '$2' in: $1"; }

sent=$(call SendOtp "{\"phone_number\": \"$PHONE\"}") || fail "SendOtp failed: $sent"
expect "$sent" '"expiresInSeconds": 120'
expect "$sent" '"resendAfterSeconds": 30'

messages=$(curl -fsS --get --data-urlencode "to=$PHONE" "$TEXTBEE_STANDIN/messages")
code=$(grep -oE '\b[0-9]{6}\b' <<<"$messages" | tail -n 1)
[ -n "$code" ] || fail "no code in $messages"
wrong=000000; [ "$code" = 000000 ] && wrong=111111

out=$(call VerifyOtp "{\"phone_number\": \"$PHONE\", \"code\": \"$wrong\"}") || fail "$out"
expect "$out" 'VERIFY_OTP_RESULT_INCORRECT'
expect "$out" '"attemptsRemaining": 4'

out=$(call VerifyOtp "{\"phone_number\": \"$PHONE\", \"code\": \"$code\"}") || fail "$out"
expect "$out" 'VERIFY_OTP_RESULT_APPROVED'
expect "$out" '"valid": true'

out=$(call VerifyOtp "{\"phone_number\": \"$PHONE\", \"code\": \"$code\"}") || fail "$out"
expect "$out" 'VERIFY_OTP_RESULT_EXPIRED'

# Errors: grpcurl prints the google.rpc details it can decode.
if out=$(call SendOtp "{\"phone_number\": \"$PHONE\"}"); then fail "second send must be refused: $out"; fi
expect "$out" 'Code: ResourceExhausted'
expect "$out" 'google.rpc.RetryInfo'
delay=$(grep -oE '"retryDelay": ?"[0-9]+s"' <<<"$out" | grep -oE '[0-9]+') || fail "no retryDelay in: $out"
[ "$delay" -ge 1 ] && [ "$delay" -le 30 ] || fail "retry delay $delay out of range"

if out=$(call SendOtp '{"phone_number": "12345"}'); then fail "invalid phone must be refused: $out"; fi
expect "$out" 'Code: InvalidArgument'
expect "$out" 'google.rpc.BadRequest'
expect "$out" '"field": ?"phone_number"'

echo "grpcurl ($("$grpcurl" -version 2>&1)): scenario passed; retry after ${delay} s"
