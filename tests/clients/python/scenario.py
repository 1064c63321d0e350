#!/usr/bin/env python3
"""otp-service from Python with grpcio: the usage example and the conformance test.

Stubs are generated from proto/ at run time (grpcio-tools), as a calling
service would. Environment: OTP_ADDR (host:port), TEXTBEE_STANDIN (URL of the
stand-in SMS and WhatsApp gateway), PHONE and CHANNEL_PHONE (numbers no other
client uses), GEN_DIR (where to put generated stubs).
"""

import json
import os
import pathlib
import re
import sys
import urllib.parse
import urllib.request

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[3]
GEN_DIR = pathlib.Path(os.environ.get("GEN_DIR", "/tmp/otp-python-stubs"))


def generate_stubs() -> None:
    GEN_DIR.mkdir(parents=True, exist_ok=True)
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{ROOT / 'proto'}",
            f"--python_out={GEN_DIR}",
            f"--grpc_python_out={GEN_DIR}",
            str(ROOT / "proto/otp/v1/otp.proto"),
        ]
    )
    if status != 0:
        sys.exit(f"protoc failed with {status}")
    sys.path.insert(0, str(GEN_DIR))


def check(condition, what) -> None:
    """An explicit check: `assert` is stripped under PYTHONOPTIMIZE, this is not."""
    if not condition:
        raise SystemExit(f"python scenario FAILED: {what}")


def last_code(phone: str) -> str:
    url = os.environ["TEXTBEE_STANDIN"] + "/messages?" + urllib.parse.urlencode({"to": phone})
    with urllib.request.urlopen(url, timeout=5) as response:
        messages = json.load(response)
    check(messages, f"no SMS recorded for {phone}")
    match = re.search(r"\b(\d{6})\b", messages[-1])
    check(match, f"no code in {messages[-1]!r}")
    return match.group(1)


def details_of(error: grpc.RpcError, detail_type):
    status = rpc_status.from_call(error)
    check(status is not None, "the error carries google.rpc.Status details")
    for any_detail in status.details:
        if any_detail.Is(detail_type.DESCRIPTOR):
            detail = detail_type()
            any_detail.Unpack(detail)
            return detail
    raise AssertionError(f"no {detail_type.DESCRIPTOR.full_name} in {status}")


def main() -> None:
    generate_stubs()
    from otp.v1 import otp_pb2, otp_pb2_grpc  # generated above

    phone = os.environ["PHONE"]
    channel = grpc.insecure_channel(os.environ["OTP_ADDR"])
    otp = otp_pb2_grpc.OtpServiceStub(channel)

    sent = otp.SendOtp(otp_pb2.SendOtpRequest(phone_number=phone), timeout=10)
    check(sent.expires_in_seconds == 120, sent)
    check(sent.resend_after_seconds == 30, sent)
    code = last_code(phone)

    wrong = "000000" if code != "000000" else "111111"
    result = otp.VerifyOtp(otp_pb2.VerifyOtpRequest(phone_number=phone, code=wrong), timeout=10)
    check(result.result == otp_pb2.VERIFY_OTP_RESULT_INCORRECT, result)
    check(result.attempts_remaining == 4, result)

    result = otp.VerifyOtp(otp_pb2.VerifyOtpRequest(phone_number=phone, code=code), timeout=10)
    check(result.valid and result.result == otp_pb2.VERIFY_OTP_RESULT_APPROVED, result)

    result = otp.VerifyOtp(otp_pb2.VerifyOtpRequest(phone_number=phone, code=code), timeout=10)
    check(result.result == otp_pb2.VERIFY_OTP_RESULT_EXPIRED, result)

    try:
        otp.SendOtp(otp_pb2.SendOtpRequest(phone_number=phone), timeout=10)
        raise AssertionError("a second send inside the cooldown must be refused")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error)
        retry = details_of(error, error_details_pb2.RetryInfo)
        check(1 <= retry.retry_delay.seconds <= 30, retry)

    try:
        otp.SendOtp(otp_pb2.SendOtpRequest(phone_number="12345"), timeout=10)
        raise AssertionError("an invalid phone must be refused")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.INVALID_ARGUMENT, error)
        bad_request = details_of(error, error_details_pb2.BadRequest)
        check(bad_request.field_violations[0].field == "phone_number", bad_request)

    # A code over WhatsApp: ask for the channel, the response names it.
    channel_phone = os.environ["CHANNEL_PHONE"]
    sent = otp.SendOtp(
        otp_pb2.SendOtpRequest(phone_number=channel_phone, channel=otp_pb2.CHANNEL_WHATSAPP),
        timeout=10,
    )
    check(sent.channel == otp_pb2.CHANNEL_WHATSAPP, sent)
    code = last_code(channel_phone)
    result = otp.VerifyOtp(otp_pb2.VerifyOtpRequest(phone_number=channel_phone, code=code), timeout=10)
    check(result.result == otp_pb2.VERIFY_OTP_RESULT_APPROVED, result)

    print(f"python (grpcio {grpc.__version__}): scenario passed; retry after {retry.retry_delay.seconds} s")


if __name__ == "__main__":
    main()
