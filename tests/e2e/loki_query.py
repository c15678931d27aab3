#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Reads every entry of a selector back from a Loki-compatible query_range API, page by page
# (direction=forward, limit per page), and writes them as loki_sink.py records, so
# check_lines.py verifies the aggregator's store the same way. A page boundary inside a run
# of equal timestamps is handled by skipping as many entries of the boundary timestamp as the
# previous page already returned.
import argparse
import json
import sys
import urllib.parse
import urllib.request


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--query", required=True)
    ap.add_argument("--start-ns", type=int, required=True)
    ap.add_argument("--end-ns", type=int, required=True)
    ap.add_argument("--limit", type=int, default=5000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    start, skip, pages, total = a.start_ns, 0, 0, 0
    with open(a.out, "wb") as out:
        while pages < 100000:
            q = urllib.parse.urlencode({"query": a.query, "start": start, "end": a.end_ns,
                                        "direction": "forward", "limit": a.limit})
            with urllib.request.urlopen("%s/loki/api/v1/query_range?%s" % (a.url, q), timeout=60) as r:
                d = json.load(r)
            pages += 1
            ents = []
            for st in d["data"]["result"]:
                lab = "{" + ",".join('%s="%s"' % kv for kv in sorted(st["stream"].items())) + "}"
                for ts, line in st["values"]:
                    ents.append((int(ts), lab, line))
            ents.sort(key=lambda e: e[0])
            page = ents[skip:]
            for ts, lab, line in page:
                b = line.encode("utf-8", "surrogateescape")
                head = line[:160].replace("\t", " ").replace("\n", " ")
                out.write(("-\t%s\t%d\t%d\t1\t%s\n" % (lab, ts, len(b), head)).encode("utf-8", "replace"))
            total += len(page)
            if len(ents) < a.limit:
                break
            last_ts = ents[-1][0]
            same = sum(1 for e in ents if e[0] == last_ts)
            skip = same + (skip if ents[0][0] == last_ts else 0)
            if skip >= a.limit:
                print("more than a page of entries share one timestamp", file=sys.stderr)
                return 1
            start = last_ts
    print(json.dumps({"pages": pages, "entries": total}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
