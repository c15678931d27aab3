#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Verifies what a receiver got against what cri_writer.py wrote: every sequence number in
# [first, first+count) exactly once, per-stream order of first arrivals, the stream label
# matching the s= field. Input: records files from loki_sink.py, or from loki_query.py (the
# aggregator read back). Prints one JSON summary line; exit 1 when a limit is exceeded.
import argparse
import json
import re
import sys

SEQ = re.compile(r"seq=(\d+) s=(\w+)")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("records", nargs="+")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--max-dups", type=int, default=0, help="duplicates allowed")
    ap.add_argument("--strict-order", action="store_true",
                    help="fail on per-stream order violations (only meaningful with one request in "
                    "flight: the agent sends up to two batches at once, which a threaded receiver "
                    "may store in either order)")
    ap.add_argument("--other", type=int, default=0, help="non-numbered entries expected (at least)")
    a = ap.parse_args()
    seen = bytearray(a.count)
    dups = lost = other = bad_stream = order = out_of_range = 0
    dup_batches = 0
    last = {}
    batches = set()
    for path in a.records:
        with open(path, "rb") as f:
            for raw in f:
                parts = raw.rstrip(b"\n").split(b"\t", 5)
                if len(parts) < 6:
                    continue
                batch, labels, _ts, _len, _utf8, head = parts
                m = SEQ.match(head.decode("utf-8", "replace"))
                if not m:
                    other += 1
                    continue
                n, s = int(m.group(1)) - a.first, m.group(2)
                if not 0 <= n < a.count:
                    out_of_range += 1
                    continue
                if ('stream="%s"' % s).encode() not in labels:
                    bad_stream += 1
                if seen[n]:
                    dups += 1
                    if batch in batches and batch != b"-":
                        dup_batches += 1
                    continue
                seen[n] = 1
                if last.get(s, -1) > n:
                    order += 1
                last[s] = n
                batches.add(batch)
    lost = a.count - sum(seen)
    firstlost = seen.find(0) if lost else -1
    res = {"expected": a.count, "lost": lost, "first_lost": firstlost + a.first if lost else None,
           "duplicates": dups, "duplicates_same_batch_id": dup_batches,
           "order_violations": order, "wrong_stream": bad_stream, "out_of_range": out_of_range,
           "other_entries": other}
    print(json.dumps(res))
    ok = lost == 0 and dups <= a.max_dups and (order == 0 or not a.strict_order) and bad_stream == 0 and out_of_range == 0
    ok = ok and other >= a.other
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
