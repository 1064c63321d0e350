#!/usr/bin/env python3
"""The load of scripts/ir-guard.sh: seed, then SendOtp and VerifyOtp phases,
each between two callgrind counter resets of the redis-server (so each
phase's instructions inside Redis are counted alone).

Environment: OTP_ADDR, SHAPE (spread | busy), SEED (sends before the
measured phases), N (sends, then successful verifies, measured), CODES (the
service's stdout: the console gateway's `SMS to <number>: ... <code>` lines),
MARK (a command run with the phase name: zero or dump the counters),
GEN_DIR. Prints one JSON line with what each phase did.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import threading
import time

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[1]
GEN_DIR = pathlib.Path(os.environ.get("GEN_DIR", "/tmp/otp-ir-guard-stubs"))
# Area codes of the US: a spread over as many destination prefixes
# (+1 and three digits, OTP_PUMPING_PREFIX_DIGITS=4).
AREAS = [201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216,
         217, 218, 219, 224, 225, 228, 229, 231, 234, 239, 240, 248, 251, 252,
         253, 254, 256, 260, 262, 267, 269, 270, 276, 281, 301, 302, 303, 304,
         305, 307, 308, 309, 310, 312, 313, 314]


def number(shape: str, i: int) -> str:
    if shape == "busy":  # one prefix, +1415
        return f"+1415{200 + (i // 10_000) % 800:03d}{i % 10_000:04d}"
    area = AREAS[i % len(AREAS)]
    j = i // len(AREAS)
    return f"+1{area}{200 + (j // 10_000) % 800:03d}{j % 10_000:04d}"


def main() -> None:
    GEN_DIR.mkdir(parents=True, exist_ok=True)
    if protoc.main(["grpc_tools.protoc", f"-I{ROOT / 'proto'}", f"--python_out={GEN_DIR}",
                    f"--grpc_python_out={GEN_DIR}", str(ROOT / "proto/otp/v1/otp.proto")]):
        sys.exit("protoc failed")
    sys.path.insert(0, str(GEN_DIR))
    from otp.v1 import otp_pb2, otp_pb2_grpc  # noqa: E402

    shape, seed, n = os.environ["SHAPE"], int(os.environ["SEED"]), int(os.environ["N"])
    stub = otp_pb2_grpc.OtpServiceStub(grpc.insecure_channel(os.environ["OTP_ADDR"]))
    report = {}

    def run(calls, in_flight):
        gate = threading.Semaphore(in_flight)
        lock = threading.Lock()
        done = {"ok": 0, "failed": {}}

        def finished(future, check):
            with lock:
                try:
                    check(future.result())
                    done["ok"] += 1
                except Exception as error:  # noqa: BLE001
                    name = error.code().name if isinstance(error, grpc.RpcError) else str(error)
                    done["failed"][name] = done["failed"].get(name, 0) + 1
            gate.release()

        for call, check in calls:
            gate.acquire()
            call().add_done_callback(lambda f, c=check: finished(f, c))
        for _ in range(in_flight):
            gate.acquire()
        return done

    def sends(indices, in_flight):
        return run(((lambda i=i: stub.SendOtp.future(otp_pb2.SendOtpRequest(
            phone_number=number(shape, i), client_key=f"ir-client-{i}"), timeout=120),
            lambda r: None) for i in indices), in_flight)

    def approved(result):
        if not result.valid:
            raise RuntimeError(f"not approved: {result.result}")

    def codes():
        found = {}
        for line in open(os.environ["CODES"], encoding="utf-8", errors="replace"):
            m = re.search(r"SMS to (\+\d+): .*?(\d{6,10})", line)
            if m:
                found[m.group(1)] = m.group(2)
        return found

    def verifies(indices, in_flight):
        deadline = time.time() + 60
        while True:
            known = codes()
            if all(number(shape, i) in known for i in indices) or time.time() > deadline:
                break
            time.sleep(0.2)
        return run(((lambda i=i: stub.VerifyOtp.future(otp_pb2.VerifyOtpRequest(
            phone_number=number(shape, i), code=known.get(number(shape, i), "0000000000"),
            client_key=f"ir-client-{i}"), timeout=120), approved) for i in indices), in_flight)

    def mark(name):
        subprocess.run([os.environ["MARK"], name], check=True)

    # Warm-up: every script loaded (a script's first call compiles it),
    # connections open.
    warm = range(seed + n, seed + n + 20)
    report["warmup"] = sends(warm, 4)
    report["warmup_verify"] = verifies(warm, 4)
    report["seed"] = sends(range(seed), 16)
    time.sleep(1)
    mark("zero")
    report["send"] = sends(range(seed, seed + n), 1)
    time.sleep(1)  # the last approval tasks' writes (none here) settle
    mark("send")
    # Busy: the oldest seeded numbers (their sends the furthest back in the
    # prefix's log); spread: the numbers just texted.
    verify_from = 0 if shape == "busy" and seed >= n else seed
    report["verify"] = verifies(range(verify_from, verify_from + n), 1)
    time.sleep(2)  # the approvals run in the background after each reply
    mark("verify")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
