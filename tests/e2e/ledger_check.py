#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks a ledger written by rwload.py against what an aggregator serves: every
# acknowledged sample must come back from /api/v1/query (a range selector over the whole
# run) with its exact timestamp and float value, and every acknowledged log entry from
# /loki/api/v1/query_range with its exact timestamp and line. Prints what is missing.
"""Usage: ledger_check.py MODE BASE_URL LEDGER

MODE is rw, loki, or rw-absent (every sample of the ledger must be gone).
Exit status 0 when everything acknowledged is there, 1 otherwise (with the first few
differences on stdout), 2 when the aggregator cannot be asked."""

import json
import sys
import urllib.parse
import urllib.request


def get(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as r:
        d = json.load(r)
    if d.get("status") != "success":
        raise RuntimeError("%s: %s" % (path, d))
    return d["data"]


def check_rw(base, ledger, absent=False):
    want = {}
    metrics = set()
    for line in open(ledger):
        metric, series, ts, v = line.split()
        metrics.add(metric)
        want[(metric, series, int(ts))] = float(v)
    if not want:
        print("ledger is empty")
        return 1
    tmax = max(k[2] for k in want)
    tmin = min(k[2] for k in want)
    window = (tmax - tmin) // 1000 + 60
    got = {}
    for metric in metrics:
        data = get(base, "/api/v1/query",
                   {"query": "%s[%ds]" % (metric, window), "time": "%.3f" % ((tmax + 1) / 1000)})
        for s in data["result"]:
            for ts, v in s["values"]:
                t = int(round(float(ts) * 1000))
                got[(metric, s["metric"].get("series"), t)] = float(v)
    if absent:
        back = [k for k in want if k in got]
        for k in back[:5]:
            print("sample that should be gone is served: %s{series=%s} @%d" % k)
        print("rw: %d samples that must be gone, %d served" % (len(want), len(back)))
        return 1 if back else 0
    missing = [k for k in want if k not in got]
    wrong = [k for k in want if k in got and got[k] != want[k]]
    for k in missing[:5]:
        print("missing acknowledged sample %s{series=%s} @%d" % k)
    for k in wrong[:5]:
        print("wrong value for %s{series=%s} @%d: want %r got %r" % (k + (want[k], got[k])))
    print("rw: %d acknowledged samples, %d stored, %d missing, %d wrong"
          % (len(want), len(got), len(missing), len(wrong)))
    return 1 if missing or wrong else 0


def check_loki(base, ledger):
    want = {}
    for line in open(ledger):
        job_stream, ts, text = line.rstrip("\n").split(" ", 2)
        want[(job_stream, int(ts))] = text
    if not want:
        print("ledger is empty")
        return 1
    tmin = min(k[1] for k in want)
    tmax = max(k[1] for k in want)
    got = {}
    data = get(base, "/loki/api/v1/query_range",
               {"query": '{job=~".+"}', "start": str(tmin), "end": str(tmax + 1),
                "limit": "1000000", "direction": "forward"})
    for s in data["result"]:
        for ts, text in s["values"]:
            k = (s["stream"].get("stream"), int(ts))
            if k in got and got[k] != text:
                print("two lines stored for %s @%s" % k)
            got[k] = text
    missing = [k for k in want if k not in got]
    wrong = [k for k in want if k in got and got[k] != want[k]]
    for k in missing[:5]:
        print("missing acknowledged entry stream=%s @%d" % k)
    for k in wrong[:5]:
        print("wrong line for stream=%s @%d" % k)
    print("loki: %d acknowledged entries, %d stored, %d missing, %d wrong"
          % (len(want), len(got), len(missing), len(wrong)))
    return 1 if missing or wrong else 0


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("rw", "rw-absent", "loki"):
        print(__doc__)
        return 2
    mode, base, ledger = sys.argv[1:]
    try:
        if mode == "loki":
            return check_loki(base, ledger)
        return check_rw(base, ledger, absent=mode == "rw-absent")
    except (OSError, RuntimeError, ValueError) as e:
        print("cannot check: %s" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
