#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Writes hostile request bodies for tests/integration/agg_hostile.sh into a directory:
# decompression bombs, truncated protobuf, pathological label sets, invalid UTF-8. They are
# generated rather than checked in because most are megabytes (or expand to gigabytes).
# Runs with /usr/bin/python3 (python3-snappy); zstd and lz4 bombs come from their CLIs.
"""Usage: hostile.py OUT_DIR
       hostile.py --rw FILE METRIC TS_MS VALUE [NSERIES]

The second form writes one ordinary remote-write body: NSERIES (default 1) series
METRIC{i="<k>"} with one sample each.

Files written (remote-write bodies are snappy-compressed protobuf unless named otherwise):
  snappy_bomb      a valid snappy block that expands ~21x to ~80 MiB of zeros
  snappy_liar      the same stream with a preamble claiming 1 KiB
  truncated_pb     a valid WriteRequest cut in the middle, then compressed
  garbage          bytes that are not snappy at all
  million_labels   one series with 1,000,000 labels (8 MB of protobuf)
  huge_value       one series whose label value is 1 MiB
  bad_utf8_value   one series whose label value is not UTF-8
  bad_utf8_name    one series whose label name is not valid
  valid            one good sample (for a 204 after each hostile request)
  push_bad_utf8.pb a Loki protobuf push whose log line is not UTF-8 (snappy)
  push_bad_utf8.json the same as JSON (invalid bytes inside a JSON string)
  push_numeric_ts.json a Loki JSON push with a numeric timestamp
"""

import os
import struct
import sys
import time

import snappy


def uvarint(x):
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def fld(num, data):
    return uvarint(num << 3 | 2) + uvarint(len(data)) + data


def label(name, value):
    return fld(1, fld(1, name) + fld(2, value))


def series(labels, ts, v=1.0):
    s = b"".join(label(n, val) for n, val in labels)
    s += fld(2, b"\x09" + struct.pack("<d", v) + b"\x10" + uvarint(ts))
    return fld(1, s)


def snappy_copies(total):
    """A hand-made snappy block: one zero literal, then 64-byte copies at offset 1."""
    n = (total - 1) // 64
    body = b"\x00\x00" + b"\xfe\x01\x00" * n  # literal len 1 (0), copy-2 len 64 off 1
    return uvarint(1 + n * 64) + body, 1 + n * 64


def rw_body(argv):
    path, metric, ts, value = argv[:4]
    n = int(argv[4]) if len(argv) > 4 else 1
    body = b"".join(series([(b"__name__", metric.encode()), (b"i", str(k).encode())],
                           int(ts), float(value)) for k in range(n))
    with open(path, "wb") as f:
        f.write(snappy.compress(body))
    return 0


def main():
    if len(sys.argv) in (6, 7) and sys.argv[1] == "--rw":
        return rw_body(sys.argv[2:])
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    now = int(time.time() * 1000)

    def put(name, data):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)

    bomb, size = snappy_copies(80 << 20)
    put("snappy_bomb", bomb)
    put("snappy_liar", uvarint(1024) + bomb[len(uvarint(size)):])
    good = series([(b"__name__", b"hostile_ok"), (b"job", b"h")], now)
    put("truncated_pb", snappy.compress(good[: len(good) // 2]))
    put("garbage", b"\xff" * 64 + b"this is not snappy")
    many = fld(1, b"".join([fld(1, fld(1, b"a") + fld(2, b"b"))] * 1000000))
    put("million_labels", snappy.compress(many))
    put("huge_value",
        snappy.compress(series([(b"__name__", b"hostile_big"), (b"v", b"x" * (1 << 20))], now)))
    put("bad_utf8_value",
        snappy.compress(series([(b"__name__", b"hostile_utf8"), (b"v", b"ok\xff\xfe\xc3")], now)))
    put("bad_utf8_name",
        snappy.compress(series([(b"__name__", b"hostile_utf8"), (b"v\xff", b"x")], now)))
    put("valid", snappy.compress(good))

    line = b"bad \xff\xfe utf-8 \xc3 line"
    ts = fld(1, b"\x08" + uvarint(now // 1000) + b"\x10" + uvarint((now % 1000) * 1000000))
    entry = fld(2, ts + fld(2, line))
    push = fld(1, fld(1, b'{job="hostile", kind="pb"}') + entry)
    put("push_bad_utf8.pb", snappy.compress(push))
    put("push_bad_utf8.json",
        b'{"streams":[{"stream":{"job":"hostile","kind":"json"},"values":[["'
        + str(now * 1000000 + 1).encode() + b'","' + line + b'"]]}]}')
    put("push_numeric_ts.json",
        b'{"streams":[{"stream":{"job":"hostile"},"values":[[' + str(now * 1000000).encode()
        + b',"numeric"]]}]}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
