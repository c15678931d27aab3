#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Reads and damages the aggregator's time-series WAL (docs/format/wal.md) for the
# corruption test: it decodes every record independently of the C code, damages one
# record on purpose, and writes which samples must survive replay and which must be gone.
"""Usage: waltool.py ACTION WAL_DIR KEPT DROPPED

ACTION is
  truncate-tail  cut the last non-empty segment in the middle of its last record
  flip-middle    flip one payload byte of the record holding the middle byte of the
                 first segment (the segment must have several records)
KEPT and DROPPED get ledger lines (see rwload.py) for the samples in records before the
damage (and in other segments) and for those in the damaged record and after it in the
same segment. The last stdout line is JSON: {"segment", "offset", "cut_bytes"}."""

import json
import os
import struct
import sys

HDR = 9  # type u8, length u32le, crc32c u32le


def uvarint(b, i):
    x = shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            return x, i
        shift += 7


def varint(b, i):
    u, i = uvarint(b, i)
    return (u >> 1) ^ -(u & 1), i


def records(data):
    """Yields (offset, type, payload) for each record; stops at the end or damage."""
    off = 0
    while off + HDR <= len(data):
        typ = data[off]
        (length,) = struct.unpack_from("<I", data, off + 1)
        if typ == 0 or off + HDR + length > len(data):
            return
        yield off, typ, data[off + HDR:off + HDR + length]
        off += HDR + length


def decode(typ, p, series, samples):
    i = 0
    if typ == 1:
        while i < len(p):
            ref, i = uvarint(p, i)
            n, i = uvarint(p, i)
            labels = {}
            for _ in range(n):
                ln, i = uvarint(p, i)
                name = p[i:i + ln].decode()
                i += ln
                ln, i = uvarint(p, i)
                labels[name] = p[i:i + ln].decode()
                i += ln
            series[ref] = labels
    elif typ == 2:
        base_ref, i = uvarint(p, i)
        base_t, i = varint(p, i)
        while i < len(p):
            dr, i = varint(p, i)
            dt, i = varint(p, i)
            (v,) = struct.unpack_from("<d", p, i)
            i += 8
            samples.append((base_ref + dr, base_t + dt, v))


def segments(wal):
    return sorted(n for n in os.listdir(wal) if n.isdigit())


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("truncate-tail", "flip-middle"):
        print(__doc__)
        return 2
    action, wal, kept_path, dropped_path = sys.argv[1:]
    segs = [s for s in segments(wal) if os.path.getsize(os.path.join(wal, s)) > 0]
    if not segs:
        print("no non-empty WAL segment in %s" % wal)
        return 1
    target = segs[-1] if action == "truncate-tail" else segs[0]
    series, kept, dropped = {}, [], []
    damage = None
    for s in segments(wal):
        data = open(os.path.join(wal, s), "rb").read()
        recs = list(records(data))
        if s == target:
            if action == "truncate-tail":
                idx = len(recs) - 1
            else:
                mid = len(data) // 2
                idx = next(k for k, r in enumerate(recs) if r[0] + HDR + len(r[2]) > mid)
                if idx == 0:
                    print("segment %s has too few records to damage its middle" % s)
                    return 1
            damage = (s, recs[idx][0], len(data) - recs[idx][0], recs[idx])
        for off, typ, p in recs:
            lost = s == target and off >= damage[1]
            decode(typ, p, series if not lost else {}, dropped if lost else kept)
    seg, off, cut, (roff, _, payload) = damage
    path = os.path.join(wal, seg)
    if action == "truncate-tail":
        os.truncate(path, roff + HDR + len(payload) // 2)
        cut = HDR + len(payload) // 2
    else:
        with open(path, "r+b") as f:
            f.seek(roff + HDR + len(payload) // 2)
            b = f.read(1)
            f.seek(roff + HDR + len(payload) // 2)
            f.write(bytes([b[0] ^ 0x5A]))
    # A kept sample counts only when its series record survived too.
    with open(kept_path, "w") as f:
        for ref, t, v in kept:
            if ref in series:
                lb = series[ref]
                f.write("%s %s %d %r\n" % (lb["__name__"], lb.get("series"), t, v))
    with open(dropped_path, "w") as f:
        for ref, t, v in dropped:
            if ref in series:
                lb = series[ref]
                f.write("%s %s %d %r\n" % (lb["__name__"], lb.get("series"), t, v))
    print(json.dumps({"segment": seg, "offset": off, "cut_bytes": cut}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
