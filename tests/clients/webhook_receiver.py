#!/usr/bin/env python3
"""A receiver for otp-service's signed SMS webhook (OTP_SMS_WEBHOOK_URL).

This is the verification recipe to copy into an in-house SMS gateway:

1. Read the raw request body (bytes, before any JSON parsing).
2. Split the X-OTP-Signature header `t=<unix seconds>,v1=<hex>` on commas.
3. Recompute HMAC-SHA256 with OTP_SMS_WEBHOOK_SECRET over `<t>.` + body.
4. Compare with `v1` in constant time (hmac.compare_digest).
5. Refuse a timestamp more than five minutes from now (a replayed request).
6. Drop a repeated `request_id`: otp-service retries after a 503 or 429
   with the same id (and a fresh signature); answer it 200 without sending.

Answers otp-service understands: 2xx taken (optionally {"message_id": ...}),
422 the number cannot receive SMS, 401 signature refused, 429/503 not taken
now (retried); any other 5xx means "maybe sent" (never retried).

Run: OTP_SMS_WEBHOOK_SECRET=... python3 webhook_receiver.py [PORT]
It prints `listening <port>`, then one line `sms <json>` per verified new
message (where a real gateway would send the SMS).
"""

import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "X-OTP-Signature"
MAX_BODY_BYTES = 64 * 1024


def verify_signature(secret: bytes, header: str, body: bytes, now: float) -> bool:
    """True when `header` signs `body` with `secret` and is fresh."""
    try:
        fields = dict(part.strip().split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        received = fields["v1"]
    except (KeyError, ValueError):
        return False
    signed = str(timestamp).encode() + b"." + body
    expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, received):
        return False
    return abs(now - timestamp) <= TOLERANCE_SECONDS


class Receiver(BaseHTTPRequestHandler):
    secret = b""
    seen = {}  # request_id -> message_id
    lock = threading.Lock()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        if length > MAX_BODY_BYTES:
            return self.answer(413, {"error": "too large"})
        body = self.rfile.read(length)
        header = self.headers.get(SIGNATURE_HEADER, "")
        if not verify_signature(self.secret, header, body, time.time()):
            return self.answer(401, {"error": "bad signature"})
        sms = json.loads(body)
        with self.lock:
            if sms["request_id"] in self.seen:
                return self.answer(200, {"message_id": self.seen[sms["request_id"]]})
            message_id = f"wh-{len(self.seen) + 1}"
            self.seen[sms["request_id"]] = message_id
        # A real receiver sends the SMS here; this one prints it.
        print("sms " + json.dumps(sms), flush=True)
        self.answer(200, {"message_id": message_id})

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass  # the SMS text holds the code: keep it out of access logs


def main():
    Receiver.secret = os.environ["OTP_SMS_WEBHOOK_SECRET"].encode()
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
