#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Backfills the request counters of Sloth's getting-started example spec
# (http_request_duration_seconds_count{job="myservice", code=...}) by remote write, in time
# order, to every URL given: one sample every STEP seconds, aligned to STEP, from
# now - HOURS to now. The counters are exactly linear within each phase so that rate() and
# any bucketed ledger agree: RPS requests per second, an error ratio of BASE until the last
# SPIKE_MIN minutes (which start on a minute boundary) and SPIKE after that. Prints the
# phase boundaries as JSON, then with --follow keeps writing live samples (still SPIKE).
import argparse
import http.client
import json
import sys
import time
import urllib.parse

import snappy

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from spike import timeseries  # noqa: E402


def post(url, body):
    u = urllib.parse.urlsplit(url)
    for attempt in range(100):  # a receiver restarting on purpose is back within 10 s
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            c.request("POST", u.path, snappy.compress(body), {
                "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "0.1.0"})
            r = c.getresponse()
            text = r.read()
            c.close()
            break
        except OSError:
            if attempt == 99:
                raise
            time.sleep(0.1)
    if r.status // 100 != 2:
        raise SystemExit("%s: HTTP %d %s" % (url, r.status, text[:200]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("urls", nargs="+")
    ap.add_argument("--hours", type=float, default=2.5)
    ap.add_argument("--step", type=int, default=15)
    ap.add_argument("--rps", type=float, default=10)
    ap.add_argument("--base", type=float, default=0.01)
    ap.add_argument("--spike", type=float, default=0.05)
    ap.add_argument("--spike-min", type=int, default=75)
    ap.add_argument("--follow", type=float, default=0,
                    help="then go on live, a sample every STEP s, for this many seconds")
    a = ap.parse_args()
    now = int(time.time()) // a.step * a.step
    start = now - int(a.hours * 3600) // 60 * 60
    spike_at = (now - a.spike_min * 60) // 60 * 60
    ok = err = 0.0
    batch_ok, batch_err = [], []
    lab = [("__name__", "http_request_duration_seconds_count"), ("job", "myservice"),
           ("instance", "i1")]
    for t in range(start, now + 1, a.step):
        if t > start:
            ratio = a.spike if t > spike_at else a.base
            ok += a.rps * a.step * (1 - ratio)
            err += a.rps * a.step * ratio
        batch_ok.append((t * 1000, ok))
        batch_err.append((t * 1000, err))
        if len(batch_ok) == 40 or t + a.step > now:
            body = timeseries(lab + [("code", "200")], batch_ok) + \
                timeseries(lab + [("code", "500")], batch_err)
            for u in a.urls:
                post(u, body)
            batch_ok, batch_err = [], []
    print(json.dumps({"start": start, "spike_at": spike_at, "end": now}), flush=True)
    t = now
    while t + a.step <= now + a.follow:
        t += a.step
        time.sleep(max(0, t - time.time()))
        ok += a.rps * a.step * (1 - a.spike)
        err += a.rps * a.step * a.spike
        body = timeseries(lab + [("code", "200")], [(t * 1000, ok)]) + \
            timeseries(lab + [("code", "500")], [(t * 1000, err)])
        for u in a.urls:
            post(u, body)


if __name__ == "__main__":
    main()
