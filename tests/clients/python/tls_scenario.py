#!/usr/bin/env python3
"""otp-service over mutual TLS from Python (grpc.ssl_channel_credentials).

Driven by tests/tls.rs, which makes the certificates and starts the server.
Environment: OTP_ADDR (localhost:port), CA_FILE (the server's CA), CERT_FILE
and KEY_FILE (a client certificate the callers file lists by SAN),
OTHER_CA_FILE (a CA that did not issue the server's certificate), TOKEN (a
listed bearer token), PHONE, GEN_DIR.
"""

import os
import pathlib
import sys

import grpc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from scenario import check, generate_stubs  # noqa: E402


def read(var: str) -> bytes:
    return pathlib.Path(os.environ[var]).read_bytes()


def send(credentials, metadata=()):
    import otp.v1.otp_pb2 as otp_pb2
    import otp.v1.otp_pb2_grpc as otp_pb2_grpc

    with grpc.secure_channel(os.environ["OTP_ADDR"], credentials) as channel:
        stub = otp_pb2_grpc.OtpServiceStub(channel)
        return stub.SendOtp(
            otp_pb2.SendOtpRequest(phone_number=os.environ["PHONE"]),
            metadata=metadata,
            timeout=10,
        )


def refused(credentials, metadata=()) -> grpc.StatusCode:
    try:
        send(credentials, metadata)
    except grpc.RpcError as err:
        return err.code()
    raise AssertionError("the call was accepted")


def main() -> None:
    generate_stubs()
    with_cert = grpc.ssl_channel_credentials(
        root_certificates=read("CA_FILE"),
        private_key=read("KEY_FILE"),
        certificate_chain=read("CERT_FILE"),
    )
    reply = send(with_cert)
    check(reply.expires_in_seconds > 0, reply)
    print("python: certificate caller sent a code")

    code = refused(with_cert, [("authorization", "Bearer not-a-listed-token")])
    check(code == grpc.StatusCode.PERMISSION_DENIED, code)
    token = os.environ["TOKEN"]
    code = refused(with_cert, [("authorization", f"Bearer {token}")])
    # The token caller is within its budget: the refusal is the phone's cooldown.
    check(code == grpc.StatusCode.RESOURCE_EXHAUSTED, code)
    print("python: unknown token PERMISSION_DENIED, listed token accepted")

    no_cert = grpc.ssl_channel_credentials(root_certificates=read("CA_FILE"))
    code = refused(no_cert)
    check(code == grpc.StatusCode.UNAVAILABLE, code)
    wrong_ca = grpc.ssl_channel_credentials(
        root_certificates=read("OTHER_CA_FILE"),
        private_key=read("KEY_FILE"),
        certificate_chain=read("CERT_FILE"),
    )
    code = refused(wrong_ca)
    check(code == grpc.StatusCode.UNAVAILABLE, code)
    print("python: no client certificate and wrong CA refused")


if __name__ == "__main__":
    main()
