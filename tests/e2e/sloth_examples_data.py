#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Backfills, by remote write and in time order, the series that Sloth's example specs
# (tests/fixtures/slo/sloth-*.yml) query, to every URL given: one sample every STEP seconds,
# aligned to STEP, from now - HOURS to now. Two phases: a base error ratio until the last
# SPIKE_MIN minutes (which start on a minute boundary), a higher one after. Counters grow
# exactly linearly within a phase (so rate() and a bucketed ledger agree) and gauges are
# constant within a phase. Each example's metric names differ, so all of them can go to one
# receiver:
#   multifile         http_request_duration_seconds_count{job="myservice", code}
#   no-alerts         http_request_duration_seconds_count{job="myapp", code}
#   custom interval   node_cpu_seconds_total{cpu, mode}
#   kubernetes-apiserver  apiserver_request_total{verb, code},
#                     apiserver_request_duration_seconds_{count,bucket}{verb, le}
#                     (WATCH requests are all slow: the spec excludes them)
#   home-wifi, raw-home-wifi  unifipoller_client_satisfaction_ratio{mac} (20 clients)
# Prints the phase boundaries as JSON, then with --follow keeps writing live samples (still
# the second phase).
import argparse
import json
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from sloth_data import post  # noqa: E402
from spike import timeseries  # noqa: E402


def counter(labels, base, spike):
    """A counter growing by base (then spike) per second."""
    return {"labels": labels, "counter": True, "v": (base, spike)}


def gauge(labels, base, spike):
    return {"labels": labels, "counter": False, "v": (base, spike)}


def split(labels, rps, ratio, bad):
    """Counters of rps requests per second, ratio of them bad, spread over the bad labels
    [(labels, share)]; the good ones get labels."""
    out = [counter(labels, rps * (1 - ratio[0]), rps * (1 - ratio[1]))]
    for extra, share in bad:
        out.append(counter(extra, rps * ratio[0] * share, rps * ratio[1] * share))
    return out


def families():
    f = []
    # multifile: objectives 99.9 and 99.99 on the same counters.
    svc = [("__name__", "http_request_duration_seconds_count"), ("job", "myservice"),
           ("instance", "i1")]
    f += split(svc + [("code", "200")], 10, (0.0005, 0.003), [(svc + [("code", "500")], 1)])
    # no-alerts: 99.99, 429 and 503 both count.
    app = [("__name__", "http_request_duration_seconds_count"), ("job", "myapp"),
           ("instance", "a1")]
    f += split(app + [("code", "200")], 20, (0.00002, 0.0003),
               [(app + [("code", "429")], 0.5), (app + [("code", "503")], 0.5)])
    # custom_rule_group_interval: softirq share of CPU time, 99.99.
    for cpu in ("0", "1"):
        c = [("__name__", "node_cpu_seconds_total"), ("instance", "n1"), ("cpu", cpu)]
        sirq = (0.00002, 0.0004)
        f.append(counter(c + [("mode", "idle")], 0.7, 0.7))
        f.append(counter(c + [("mode", "user")], 0.2, 0.2))
        f.append(counter(c + [("mode", "system")], 0.1 - sirq[0], 0.1 - sirq[1]))
        f.append(counter(c + [("mode", "softirq")], sirq[0], sirq[1]))
    # kubernetes-apiserver availability (99.9): 5xx and 429 are bad, 404 is not.
    req = [("__name__", "apiserver_request_total"), ("job", "apiserver")]
    f += split(req + [("verb", "GET"), ("code", "200")], 30, (0.0003, 0.004),
               [(req + [("verb", "GET"), ("code", "500")], 0.5),
                (req + [("verb", "LIST"), ("code", "429")], 0.3),
                (req + [("verb", "POST"), ("code", "503")], 0.2)])
    f.append(counter(req + [("verb", "LIST"), ("code", "404")], 2, 2))
    # kubernetes-apiserver latency (99%): requests over 0.4 s are bad; WATCH is excluded.
    for verb, rps, slow in (("GET", 20, (0.002, 0.03)), ("LIST", 5, (0.002, 0.03)),
                            ("WATCH", 1, (0.95, 0.95))):
        h = [("job", "apiserver"), ("verb", verb)]
        name = "apiserver_request_duration_seconds"
        f.append(counter(h + [("__name__", name + "_count")], rps, rps))
        for le, share in (("0.1", lambda s: 0.8 * (1 - s)), ("0.4", lambda s: 1 - s),
                          ("+Inf", lambda s: 1.0)):
            f.append(counter(h + [("__name__", name + "_bucket"), ("le", le)],
                             rps * share(slow[0]), rps * share(slow[1])))
    # home-wifi (< 0.75 bad at 95%, < 0.5 bad at 99.9%) and raw-home-wifi (mean, 95%).
    for i in range(20):
        lab = [("__name__", "unifipoller_client_satisfaction_ratio"), ("site_name", "home"),
               ("mac", "00:00:00:00:00:%02x" % i)]
        good = 0.9 + 0.005 * i
        base = 0.6 if i == 0 else good
        spike = {0: 0.6, 1: 0.4, 2: 0.4, 3: 0.6}.get(i, good)
        f.append(gauge(lab, base, spike))
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("urls", nargs="+")
    ap.add_argument("--hours", type=float, default=2.5)
    ap.add_argument("--step", type=int, default=15)
    ap.add_argument("--spike-min", type=int, default=75)
    ap.add_argument("--follow", type=float, default=0,
                    help="then go on live, a sample every STEP s, for this many seconds")
    a = ap.parse_args()
    fams = families()
    now = int(time.time()) // a.step * a.step
    start = now - int(a.hours * 3600) // 60 * 60
    spike_at = (now - a.spike_min * 60) // 60 * 60
    val = [0.0] * len(fams)

    def advance(t):
        ph = 1 if t > spike_at else 0
        for i, s in enumerate(fams):
            if s["counter"]:
                val[i] += s["v"][ph] * a.step if t > start else 0
            else:
                val[i] = s["v"][ph]

    batch = [[] for _ in fams]

    def flush():
        body = b"".join(timeseries(s["labels"], batch[i]) for i, s in enumerate(fams))
        for u in a.urls:
            post(u, body)
        for b in batch:
            b.clear()

    for t in range(start, now + 1, a.step):
        advance(t)
        for i in range(len(fams)):
            batch[i].append((t * 1000, val[i]))
        if len(batch[0]) == 40 or t + a.step > now:
            flush()
    print(json.dumps({"start": start, "spike_at": spike_at, "end": now}), flush=True)
    t = now
    while t + a.step <= now + a.follow:
        t += a.step
        time.sleep(max(0, t - time.time()))
        advance(t)
        for i in range(len(fams)):
            batch[i].append((t * 1000, val[i]))
        flush()


if __name__ == "__main__":
    main()
