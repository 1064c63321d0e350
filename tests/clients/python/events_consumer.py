#!/usr/bin/env python3
"""Reading otp-service's audit events from Python: the consumer example and its test.

Joins a consumer group on the stream (XGROUP CREATE … $), drives a send, a
wrong guess and the right guess through the gRPC API, then reads the group's
new entries with XREADGROUP and acknowledges them (XACK), as an audit
consumer would. Checks the three events arrive in order for this number and
that no field holds the code or the number.

Environment: OTP_ADDR (host:port), TEXTBEE_STANDIN (URL of the stand-in SMS
gateway), PHONE (a number no other client uses), REDIS_URL, OTP_REDIS_PREFIX and
OTP_EVENTS_STREAM as the service has them (the stream's key is
`<OTP_REDIS_PREFIX>:<OTP_EVENTS_STREAM>`), GEN_DIR (where to put generated stubs).
"""

import os
import time

import redis

from scenario import check, generate_stubs, last_code

GROUP = "audit-example"
CONSUMER = "consumer-1"


def masked(phone: str) -> str:
    """The masked form events carry: country code, stars, last four digits."""
    digits = phone.lstrip("+")
    return "+" + digits[0] + "*" * (len(digits) - 5) + digits[-4:]


def read_events(stream: redis.Redis, key: str, phone: str, wanted: int) -> list:
    """This number's events read through the group, acknowledged, in order."""
    events, deadline = [], time.monotonic() + 10
    while len(events) < wanted and time.monotonic() < deadline:
        replies = stream.xreadgroup(GROUP, CONSUMER, {key: ">"}, count=100, block=500)
        for _key, entries in replies or []:
            for entry_id, fields in entries:
                stream.xack(key, GROUP, entry_id)
                if fields.get("masked_phone") == masked(phone):
                    events.append(fields)
    return events


def main() -> None:
    generate_stubs()
    import grpc
    from otp.v1 import otp_pb2, otp_pb2_grpc  # generated above

    # The service appends under its key prefix, as it names every key.
    key = f'{os.environ.get("OTP_REDIS_PREFIX", "otp")}:{os.environ["OTP_EVENTS_STREAM"]}'
    phone = os.environ["PHONE"]
    stream = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    # `$`: only events from now on; MKSTREAM in case no event was written yet.
    try:
        stream.xgroup_create(key, GROUP, id="$", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise

    otp = otp_pb2_grpc.OtpServiceStub(grpc.insecure_channel(os.environ["OTP_ADDR"]))
    otp.SendOtp(otp_pb2.SendOtpRequest(phone_number=phone, client_key="py-audit"), timeout=10)
    code = last_code(phone)
    wrong = "000000" if code != "000000" else "111111"
    for guess in (wrong, code):
        otp.VerifyOtp(otp_pb2.VerifyOtpRequest(phone_number=phone, code=guess), timeout=10)

    events = read_events(stream, key, phone, 3)
    kinds = [event["event"] for event in events]
    check(kinds == ["sent", "incorrect", "approved"], kinds)
    check(len({event["phone_digest"] for event in events}) == 1, events)
    national = phone.lstrip("+")[1:]
    for event in events:
        for field, value in event.items():
            check(code not in value, f"code in {field}")
            check(national not in value, f"number in {field}")
    print(f"python events: {kinds} for {events[0]['masked_phone']} ok")


if __name__ == "__main__":
    main()
