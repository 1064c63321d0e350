#!/usr/bin/env bash
# One round of scripted traffic for the operations check, with grpcurl:
# a send, a wrong and a right guess, a reuse, a refused resend (cooldown),
# TimeLeft, a send then CancelOtp, a send the stand-in gateway fails, an
# invalid number, a code over WhatsApp, and a WhatsApp send to a number "not
# on WhatsApp" that falls through to SMS: 13 RPCs per round. The sends are
# priced (check.sh's prices file): their estimates (channel by channel), and
# the sends and approvals by country, are the spend panels' and rules'
# series. Then SMS pumping the guard must catch:
# round 1 sends codes nobody verifies to one destination prefix; round 2
# keeps sending there until the guard suspends the prefix (it judges a send
# once its code's lifetime is over: OTP_TTL_SECONDS + OTP_GRACE_SECONDS of
# the service, which check.sh keeps short).
# Environment: OTP_ADDR, TEXTBEE_STANDIN, ROUND (1 or 2: numbers differ per
# round), FAILING_PHONE (a number the stand-in fails), GRPCURL (optional).
set -euo pipefail
grpcurl=${GRPCURL:-grpcurl}
fail() { echo "ops traffic: $*" >&2; exit 1; }
call() { "$grpcurl" -plaintext -max-time 10 -d "$2" "$OTP_ADDR" "otp.v1.OtpService/$1" 2>&1; }
refused() { if out=$(call "$@"); then fail "$1 $2 must be refused: $out"; fi; }

phone="+141555502${ROUND}0"
other="+141555502${ROUND}1"

out=$(call SendOtp "{\"phone_number\": \"$phone\"}") || fail "SendOtp: $out"
code=$(curl -fsS --get --data-urlencode "to=$phone" "$TEXTBEE_STANDIN/messages" | grep -oE '\b[0-9]{6}\b' | tail -n 1)
[ -n "$code" ] || fail "no code delivered to $phone"
wrong=000000; [ "$code" = 000000 ] && wrong=111111

out=$(call VerifyOtp "{\"phone_number\": \"$phone\", \"code\": \"$wrong\"}") || fail "$out"
grep -q INCORRECT <<<"$out" || fail "wrong guess not INCORRECT: $out"
out=$(call VerifyOtp "{\"phone_number\": \"$phone\", \"code\": \"$code\"}") || fail "$out"
grep -q APPROVED <<<"$out" || fail "right guess not APPROVED: $out"
out=$(call VerifyOtp "{\"phone_number\": \"$phone\", \"code\": \"$code\"}") || fail "$out"
grep -q EXPIRED <<<"$out" || fail "reuse not EXPIRED: $out"
refused SendOtp "{\"phone_number\": \"$phone\"}"
grep -q ResourceExhausted <<<"$out" || fail "resend not refused by the cooldown: $out"

out=$(call TimeLeft "{\"phone_number\": \"$phone\"}") || fail "TimeLeft: $out"
out=$(call SendOtp "{\"phone_number\": \"$other\"}") || fail "SendOtp: $out"
out=$(call CancelOtp "{\"phone_number\": \"$other\"}") || fail "CancelOtp: $out"

refused SendOtp "{\"phone_number\": \"$FAILING_PHONE\"}"
grep -q Unavailable <<<"$out" || fail "failed SMS send not UNAVAILABLE: $out"
refused SendOtp '{"phone_number": "12345"}'
grep -q InvalidArgument <<<"$out" || fail "invalid number not INVALID_ARGUMENT: $out"

# WhatsApp (the stand-in is also Meta's Cloud API): +141555502R2 has it,
# +141555502R8 has not (check.sh tells the stand-in) and gets an SMS.
on_whatsapp="+141555502${ROUND}2" not_on_whatsapp="+141555502${ROUND}8"
out=$(call SendOtp "{\"phone_number\": \"$on_whatsapp\", \"channel\": \"CHANNEL_WHATSAPP\"}") || fail "$out"
grep -q CHANNEL_WHATSAPP <<<"$out" || fail "WhatsApp send not carried by WhatsApp: $out"
code=$(curl -fsS --get --data-urlencode "to=$on_whatsapp" "$TEXTBEE_STANDIN/messages" | grep -oE '\b[0-9]{6}\b' | tail -n 1)
out=$(call VerifyOtp "{\"phone_number\": \"$on_whatsapp\", \"code\": \"$code\"}") || fail "$out"
grep -q APPROVED <<<"$out" || fail "WhatsApp code not APPROVED: $out"
out=$(call SendOtp "{\"phone_number\": \"$not_on_whatsapp\", \"channel\": \"CHANNEL_WHATSAPP\"}") || fail "$out"
grep -q CHANNEL_SMS <<<"$out" || fail "no fallback to SMS for a number without WhatsApp: $out"

# +1 628 2RN NNNN: one destination prefix (+16282, OTP_PUMPING_PREFIX_DIGITS=4)
# whose codes are never verified, texted for three sources (client keys): the
# guard's default OTP_PUMPING_MIN_SOURCES.
pumped() { printf '+16282%s%05d' "$ROUND" "$1"; }
if [ "$ROUND" = 1 ]; then
  for n in 1 2 3; do
    out=$(call SendOtp "{\"phone_number\": \"$(pumped "$n")\", \"client_key\": \"pumper-$n\"}") ||
      fail "pumped SendOtp: $out"
  done
else
  # Until the first two are judged: a condition with a deadline, not a sleep.
  deadline=$(( $(date +%s) + 30 )) n=0
  while out=$(call SendOtp "{\"phone_number\": \"$(pumped "$n")\"}"); do
    [ "$(date +%s)" -lt "$deadline" ] || fail "no pumping suspension within 30 s: $out"
    n=$((n + 1))
    sleep 0.5
  done
  grep -q 'suspended (suspected SMS pumping)' <<<"$out" || fail "pumped send refused, not suspended: $out"
fi
