#!/usr/bin/env python3
"""What each part of the Redis layout holds, for scripts/bytes.sh: every key's
MEMORY USAGE (SCAN, pipelined), summed by what the key is and divided by the
numbers texted. The parts live for different times, which is what sizing a
Redis needs (README, "How big a Redis"):

  record  `<prefix>:n…`  a number's code state and send log: the daily log's day
  client  `<prefix>:c…`  the client_key logs' bucket hashes: a send window
  guard   `…{pumping…`   the pumping guard's per-prefix keys: its window
  other   the shared logs (global, anonymous), the layout marker

Usage: bytes_parts.py PORT ALL LOAD BEFORE [PREFIX]: ALL numbers texted in
all (the warm-up's too: each part is its keys' sum over them), LOAD of them
by the load measured, BEFORE its used_memory before that load. Prints one
line of `part=bytes_per_number(ttl<=longest TTL left)` words; `rest` is the load's used_memory per
number minus the parts (the keyspace's and the expiry table's buckets).
"""

import socket
import sys

PORT, ALL, LOAD, BEFORE = (int(arg) for arg in sys.argv[1:5])
PREFIX = (sys.argv[5] if len(sys.argv) > 5 else "otp").encode()


class Redis:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rwb")

    def send(self, *args: bytes) -> None:
        out = b"*%d\r\n" % len(args)
        for arg in args:
            out += b"$%d\r\n%s\r\n" % (len(arg), arg)
        self.file.write(out)

    def read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.file.read(size + 2)[:-2]
        if kind == b"*":
            return [self.read() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")

    def call(self, *args: bytes):
        self.send(*args)
        self.file.flush()
        return self.read()


def part_of(key: bytes) -> str:
    if key.startswith(PREFIX + b":n"):
        return "record"
    if key.startswith(PREFIX + b":c"):
        return "client"
    if b"{pumping" in key:
        return "guard"
    return "other"


def main() -> None:
    redis = Redis(PORT)
    totals = {"record": 0, "client": 0, "guard": 0, "other": 0}
    # Each part's longest time to live left (ms; -1: no TTL): what it is kept for.
    longest = dict.fromkeys(totals, -2)
    cursor = b"0"
    while True:
        cursor, keys = redis.call(b"SCAN", cursor, b"COUNT", b"1000")
        for key in keys:
            redis.send(b"MEMORY", b"USAGE", key, b"SAMPLES", b"0")
            redis.send(b"PTTL", key)
        redis.file.flush()
        for key in keys:
            part = part_of(key)
            totals[part] += redis.read() or 0
            longest[part] = max(longest[part], redis.read())
        if cursor == b"0":
            break
    info = redis.call(b"INFO", b"memory").decode()
    used = int(next(line for line in info.split("\r\n") if line.startswith("used_memory:"))[12:])
    shares = {part: total / ALL for part, total in totals.items()}
    shares["rest"] = (used - BEFORE) / LOAD - sum(shares.values())
    words = []
    for part, share in shares.items():
        ttl = longest.get(part, -2)
        kept = "" if ttl == -2 else "(no TTL)" if ttl == -1 else f"(ttl<={ttl / 1000:.0f}s)"
        words.append(f"{part}={share:.0f}B{kept}")
    print(" ".join(words))


if __name__ == "__main__":
    main()
