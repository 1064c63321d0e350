#!/usr/bin/env python3
"""The load of scripts/bytes.sh: N distinct numbers, each texted SENDS times
with its own client_key, as fast as IN_FLIGHT concurrent calls allow.

Environment: OTP_ADDR (host:port), NUMBERS, SENDS, IN_FLIGHT (default 64),
FIRST (the first number's offset, so two loads on one store use other
numbers), GEN_DIR (where to put the generated stubs).
Prints one JSON line: {"ok": n, "failed": {status: count}}. Exit 1 if any
call was refused (any status but UNAVAILABLE): a refused send would make
the bytes per number a lie. UNAVAILABLE (a call past its deadline on a busy
machine; rare) is counted and reported, not retried.
"""

import json
import os
import pathlib
import sys
import threading

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[1]
GEN_DIR = pathlib.Path(os.environ.get("GEN_DIR", "/tmp/otp-bytes-stubs"))


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


def main() -> None:
    generate_stubs()
    from otp.v1 import otp_pb2, otp_pb2_grpc  # noqa: E402 (generated above)

    numbers = int(os.environ["NUMBERS"])
    sends = int(os.environ.get("SENDS", "1"))
    first = int(os.environ.get("FIRST", "0"))
    in_flight = threading.Semaphore(int(os.environ.get("IN_FLIGHT", "64")))
    channel = grpc.insecure_channel(os.environ["OTP_ADDR"])
    stub = otp_pb2_grpc.OtpServiceStub(channel)
    lock = threading.Lock()
    ok = 0
    failed: dict[str, int] = {}

    def done(future) -> None:
        nonlocal ok
        with lock:
            try:
                future.result()
                ok += 1
            except grpc.RpcError as error:
                name = error.code().name
                failed[name] = failed.get(name, 0) + 1
        in_flight.release()

    # UK mobile numbers +44 74xx xxx xxx, spread over the range.
    for round_ in range(sends):
        for i in range(first, first + numbers):
            in_flight.acquire()
            request = otp_pb2.SendOtpRequest(
                phone_number=f"+4474{(i * 37) % 100_000_000:08d}",
                client_key=f"bytes-client-{i}",
            )
            stub.SendOtp.future(request, timeout=30).add_done_callback(done)
        del round_
    for _ in range(int(os.environ.get("IN_FLIGHT", "64"))):
        in_flight.acquire()
    print(json.dumps({"ok": ok, "failed": failed}))
    refused = {status: n for status, n in failed.items() if status != "UNAVAILABLE"}
    sys.exit(1 if refused else 0)


if __name__ == "__main__":
    main()
