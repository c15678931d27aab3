#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The PromQL compliance tester's method, reimplemented: expand the query templates of
promql-test-queries.yml exactly as compliance's testcases/expand.go does, run each as a
range query against a reference Prometheus and against nines, and compare the matrices
(same series and step timestamps; values within a relative 1e-5; NaN equals NaN).
Usage: compliance.py QUERIES.yml REF_URL TEST_URL END START STEP HOST [--min-pct P]"""
import itertools
import json
import math
import sys
import urllib.parse
import urllib.request

import yaml

VARIANTS = {
    "range": ["1s", "15s", "1m", "5m", "15m", "1h"],
    "offset": ["1m", "5m", "10m"],
    "simpleAggrOp": ["sum", "avg", "max", "min", "count", "stddev", "stdvar"],
    "topBottomOp": ["topk", "bottomk"],
    "quantile": ["-0.5", "0.1", "0.5", "0.75", "0.95", "0.90", "0.99", "1", "1.5"],
    "arithBinOp": ["+", "-", "*", "/", "%", "^"],
    "compBinOp": ["==", "!=", "<", ">", "<=", ">="],
    "binOp": ["+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">="],
    "simpleMathFunc": ["abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "round"],
    "extrapolatedRateFunc": ["delta", "rate", "increase"],
    "clampFunc": ["clamp_min", "clamp_max"],
    "instantRateFunc": ["idelta", "irate"],
    "dateFunc": ["day_of_month", "day_of_week", "days_in_month", "hour", "minute", "month", "year"],
    "smoothingFactor": ["0.1", "0.5", "0.8"],
    "trendFactor": ["0.1", "0.5", "0.8"],
}
VARIANTS["simpleTimeAggrOp"] = VARIANTS["simpleAggrOp"] + ["absent", "last"]


def expand(cases):
    out = []
    for c in cases:
        args = c.get("variant_args") or []
        for combo in itertools.product(*[VARIANTS[a] for a in args]):
            q = c["query"]
            for a, v in zip(args, combo):
                q = q.replace("{{.%s}}" % a, v)
            out.append({"query": q, "should_fail": bool(c.get("should_fail")),
                        "skip": bool(c.get("skip_comparison"))})
    return out


def query(base, q, start, end, step):
    data = urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": step}).encode()
    try:
        with urllib.request.urlopen(base + "/api/v1/query_range", data, timeout=30) as r:
            return json.load(r), None
    except urllib.error.HTTPError as e:
        try:
            body = json.load(e)
        except Exception:  # noqa: BLE001 - any undecodable error body
            body = {"error": "HTTP %d" % e.code}
        return None, body.get("error", "HTTP %d" % e.code)
    except Exception as e:  # noqa: BLE001 - connection problems are failures too
        return None, str(e)


def norm(resp):
    res = resp["data"]["result"]
    return sorted(((tuple(sorted(s["metric"].items())), s["values"]) for s in res),
                  key=lambda x: x[0])


def close(a, b):
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    if fa == fb:
        return True
    return abs(fa - fb) <= 1e-5 * max(abs(fa), abs(fb))


def same(ref, got):
    if len(ref) != len(got):
        return "series count %d != %d" % (len(ref), len(got))
    for (la, va), (lb, vb) in zip(ref, got):
        if la != lb:
            return "labels %s != %s" % (dict(la), dict(lb))
        if len(va) != len(vb):
            return "%s: %d points != %d" % (dict(la), len(va), len(vb))
        for (ta, xa), (tb, xb) in zip(va, vb):
            if ta != tb or not close(xa, xb):
                return "%s: [%s, %s] != [%s, %s]" % (dict(la), ta, xa, tb, xb)
    return None


def main():
    qfile, ref, test, end, start, step, host = sys.argv[1:8]
    min_pct = float(sys.argv[sys.argv.index("--min-pct") + 1]) if "--min-pct" in sys.argv else 0
    cases = expand(yaml.safe_load(open(qfile))["test_cases"])
    passed = failed = 0
    for c in cases:
        q = c["query"].replace("demo.promlabs.com", host)
        rr, rerr = query(ref, q, start, end, step)
        tr, terr = query(test, q, start, end, step)
        if c["should_fail"]:
            ok = terr is not None
            why = None if ok else "expected an error"
        elif rerr is not None:
            ok, why = False, "reference failed: %s" % rerr
        elif terr is not None:
            ok, why = False, "nines failed: %s" % terr
        elif c["skip"]:
            ok, why = True, None
        else:
            why = same(norm(rr), norm(tr))
            ok = why is None
        if ok:
            passed += 1
        else:
            failed += 1
            print("MISMATCH %s\n    %s" % (q, why))
    total = passed + failed
    pct = 100.0 * passed / total if total else 0
    print("Total: %d / %d (%.2f%%) passed" % (passed, total, pct))
    print("promql-compliance: %d passed, %d failed" % (passed, failed))
    sys.exit(0 if pct >= min_pct else 1)


if __name__ == "__main__":
    main()
