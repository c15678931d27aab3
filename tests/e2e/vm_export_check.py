#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Compares what VictoriaMetrics holds (/api/v1/export, raw samples, duplicates included
# since VictoriaMetrics runs without -dedup.minScrapeInterval) with a rwload.py ledger of
# samples the aggregator acknowledged. Waits until every ledger sample arrived or the time
# is up, then reports missing, duplicated, unexpected and wrong-valued samples as JSON.
"""Usage: vm_export_check.py VM_URL LEDGER --match SELECTOR [options]

--series-regex keeps only ledger lines whose series label matches (a write_relabel keep
filter). --exact fails on duplicates and on samples the ledger does not have; without it
only missing or wrong samples fail (SIGKILL runs, where duplicates are measured).
"""

import argparse
import collections
import json
import re
import sys
import time
import urllib.parse
import urllib.request


def export(vm, match):
    try:
        urllib.request.urlopen(vm + "/internal/force_flush", timeout=10).read()
    except OSError:
        pass
    url = vm + "/api/v1/export?" + urllib.parse.urlencode({"match[]": match})
    with urllib.request.urlopen(url, timeout=30) as r:
        for line in r:
            if line.strip():
                yield json.loads(line)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("vm")
    p.add_argument("ledger")
    p.add_argument("--match", required=True)
    p.add_argument("--series-regex", default=".*")
    p.add_argument("--exact", action="store_true")
    p.add_argument("--wait", type=float, default=20)
    a = p.parse_args()
    keep = re.compile(a.series_regex)
    want = {}
    with open(a.ledger) as f:
        for line in f:
            _metric, series, ts, value = line.split()
            if keep.fullmatch(series):
                want[(series, int(ts))] = float(value)
    deadline = time.monotonic() + a.wait
    while True:
        got = collections.Counter()
        values = {}
        other = 0
        for s in export(a.vm, a.match):
            series = s["metric"].get("series", "")
            if not keep.fullmatch(series):
                other += len(s["timestamps"])
            for ts, v in zip(s["timestamps"], s["values"]):
                got[(series, ts)] += 1
                values[(series, ts)] = v
        missing = [k for k in want if k not in got]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    dups = sum(n - 1 for n in got.values() if n > 1)
    extra = sum(1 for k in got if k not in want)
    # VictoriaMetrics keeps 12 significant decimal digits.
    wrong = sum(1 for k, v in want.items() if k in values and
                abs(values[k] - v) > 1e-11 * max(1.0, abs(v)))
    out = {"expected": len(want), "received": sum(got.values()), "missing": len(missing),
           "duplicates": dups, "unexpected": extra, "filtered_out_present": other,
           "wrong_values": wrong}
    print(json.dumps(out))
    bad = missing or wrong or other or (a.exact and (dups or extra))
    return 1 if bad or not want else 0


if __name__ == "__main__":
    sys.exit(main())
