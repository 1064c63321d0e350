#!/usr/bin/env python3
"""A stand-in for the TextBee SMS API (and Meta's WhatsApp Cloud API), for
the polyglot client tests.

It accepts what TextBee accepts (POST .../send-sms with an `x-api-key`
header and a JSON body {"recipients": [...], "message": "..."}), answers like
TextBee, and lets a test read what was "sent":

    GET /messages?to=+14155550123   ->  ["Your code is 123456 ...", ...]

It also takes what the WhatsApp Cloud API takes (POST /<version>/<phone
number id>/messages with `Authorization: Bearer KEY` and an authentication
template whose body parameter is the code), recording "WhatsApp code <code>"
for `+<to>` so the same GET reads it.

Usage: textbee_standin.py --api-key KEY --port-file FILE [--fail-recipient PHONE=STATUS ...]
       [--not-on-whatsapp PHONE ...]
(binds a free loopback port and writes it to FILE once listening).
`--fail-recipient +14155550199=503` makes every send to that number fail with
that HTTP status (nothing is recorded), so a test can exercise gateway
failures on chosen numbers while the others are delivered.
`--not-on-whatsapp +14155550199` answers WhatsApp sends to that number as Meta
does for a number without WhatsApp (HTTP 400, error code 131026).
"""

import argparse
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MESSAGES: dict[str, list[str]] = {}
LOCK = threading.Lock()


def handler_for(api_key: str, failing: dict[str, int], not_on_whatsapp: set[str]):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args):  # keep test output quiet
            pass

        def reply(self, status: int, body) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def whatsapp(self):
            if self.headers.get("authorization") != f"Bearer {api_key}":
                return self.reply(401, {"error": {"message": "Invalid OAuth access token", "code": 190}})
            length = int(self.headers.get("content-length", "0"))
            try:
                body = json.loads(self.rfile.read(length))
                to = "+" + body["to"]
                code = body["template"]["components"][0]["parameters"][0]["text"]
            except (ValueError, KeyError, TypeError, IndexError):
                return self.reply(400, {"error": {"message": "invalid body", "code": 100}})
            if to in not_on_whatsapp:
                return self.reply(
                    400,
                    {
                        "error": {
                            "message": "(#131026) Message Undeliverable.",
                            "type": "OAuthException",
                            "code": 131026,
                            "fbtrace_id": uuid.uuid4().hex,
                        }
                    },
                )
            with LOCK:
                MESSAGES.setdefault(to, []).append(f"WhatsApp code {code}")
            return self.reply(
                200,
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                    "messages": [{"id": "wamid." + uuid.uuid4().hex}],
                },
            )

        def do_POST(self):  # noqa: N802 (http.server naming)
            if self.path.endswith("/messages"):
                return self.whatsapp()
            if not self.path.endswith("/send-sms"):
                return self.reply(404, {"error": "not found"})
            if self.headers.get("x-api-key") != api_key:
                return self.reply(401, {"error": "Unauthorized"})
            length = int(self.headers.get("content-length", "0"))
            try:
                body = json.loads(self.rfile.read(length))
                recipients = body["recipients"]
                message = body["message"]
            except (ValueError, KeyError, TypeError):
                return self.reply(400, {"error": "invalid body"})
            failed = [failing[r] for r in recipients if r in failing]
            if failed:
                return self.reply(failed[0], {"error": "stand-in failure"})
            with LOCK:
                for recipient in recipients:
                    MESSAGES.setdefault(recipient, []).append(message)
            return self.reply(
                201,
                {
                    "data": {
                        "success": True,
                        "message": "SMS added to queue for processing",
                        "smsBatchId": uuid.uuid4().hex,
                        "recipientCount": len(recipients),
                    }
                },
            )

        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            if url.path != "/messages":
                return self.reply(404, {"error": "not found"})
            to = parse_qs(url.query).get("to", [""])[0]
            with LOCK:
                return self.reply(200, list(MESSAGES.get(to, [])))

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument(
        "--fail-recipient",
        action="append",
        default=[],
        metavar="PHONE=STATUS",
        help="answer sends to PHONE with HTTP STATUS (repeatable)",
    )
    parser.add_argument(
        "--not-on-whatsapp",
        action="append",
        default=[],
        metavar="PHONE",
        help="answer WhatsApp sends to PHONE as Meta does for a number without WhatsApp",
    )
    args = parser.parse_args()
    failing = {}
    for rule in args.fail_recipient:
        phone, _, status = rule.partition("=")
        failing[phone] = int(status)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(args.api_key, failing, set(args.not_on_whatsapp)))
    with open(args.port_file, "w", encoding="utf-8") as port_file:
        port_file.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
