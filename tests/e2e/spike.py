#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Remote-write generator for the alerting tests: request counters of one or more jobs, one
# sample per second stamped with the wall clock, with some backdated healthy history first
# and an error spike in a chosen time slot. The same requests go to every URL given (two
# aggregators receiving the same data). Runs with /usr/bin/python3 (python3-snappy); the
# WriteRequest protobuf is encoded by hand.
"""Usage: spike.py [options] URL [URL...]

Each --job NAME:RPS:BASE_RATIO[:SPIKE_RATIO] adds a job with counters
http_requests_total{job=NAME, instance="i1", code="200"|"500"}; the error counter is
floor(total x ratio) so the observed ratio never overshoots the one asked for. SPIKE_RATIO
applies from --spike-at to --spike-at + --spike-for seconds after the live phase starts.
Events go to stdout as "<event> <job> <unix-seconds>", flushed:
  live <t>             first live sample acknowledged
  spike_start JOB <t>  first spike sample of JOB acknowledged
  cross JOB <t>        the sample that makes JOB's live error ratio exceed --cross-ratio
                       (with at least 50 live requests) was acknowledged
  spike_end JOB <t>    first sample after the spike acknowledged
  done <t>
Exits 1 on any non-2xx answer or connection error, except that with --keep-going a URL that
stops accepting connections (an aggregator killed on purpose) is dropped with a message on
stderr and the others keep receiving; then it exits 1 only when no URL is left.
"""

import argparse
import http.client
import math
import struct
import sys
import time
import urllib.parse

import snappy


def uvarint(x):
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def field_bytes(num, data):
    return uvarint(num << 3 | 2) + uvarint(len(data)) + data


def label(name, value):
    return field_bytes(1, name.encode()) + field_bytes(2, value.encode())


def sample(value, ts):
    return b"\x09" + struct.pack("<d", value) + b"\x10" + uvarint(ts & (2**64 - 1))


def timeseries(labels, samples):
    body = b"".join(field_bytes(1, label(n, v)) for n, v in sorted(labels))
    body += b"".join(field_bytes(2, sample(v, t)) for t, v in samples)
    return field_bytes(1, body)


class Job:
    def __init__(self, spec):
        parts = spec.split(":")
        if len(parts) not in (3, 4):
            raise SystemExit("--job wants NAME:RPS:BASE_RATIO[:SPIKE_RATIO], got %r" % spec)
        self.name = parts[0]
        self.rps = int(parts[1])
        self.base = float(parts[2])
        self.spike = float(parts[3]) if len(parts) == 4 else self.base
        if self.rps <= 0 or not (0 <= self.base <= 1 and 0 <= self.spike <= 1):
            raise SystemExit("bad --job %r" % spec)
        self.total = 0
        self.errors = 0.0
        self.live_total = 0
        self.live_errors = 0
        self.crossed = False

    def step(self, ratio, live):
        before = math.floor(self.errors)
        self.total += self.rps
        self.errors += self.rps * ratio
        if live:
            self.live_total += self.rps
            self.live_errors += math.floor(self.errors) - before

    def series(self, samples_ok, samples_err):
        base = [("__name__", "http_requests_total"), ("job", self.name), ("instance", "i1")]
        return timeseries(base + [("code", "200")], samples_ok) + timeseries(
            base + [("code", "500")], samples_err
        )


class Writer:
    def __init__(self, urls, keep_going):
        self.keep_going = keep_going
        self.targets = []
        for u in urls:
            p = urllib.parse.urlsplit(u)
            self.targets.append((p.hostname, p.port or 80, p.path or "/api/v1/write"))

    def send(self, body):
        data = snappy.compress(body)
        headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        }
        for t in list(self.targets):
            host, port, path = t
            c = http.client.HTTPConnection(host, port, timeout=10)
            try:
                c.request("POST", path, data, headers)
                r = c.getresponse()
                msg = r.read()
            except OSError as e:
                if not self.keep_going or len(self.targets) == 1:
                    raise
                print("spike.py: %s:%d dropped: %s" % (host, port, e), file=sys.stderr, flush=True)
                self.targets.remove(t)
                continue
            finally:
                c.close()
            if not 200 <= r.status < 300:
                raise SystemExit("%s:%d answered %d: %r" % (host, port, r.status, msg[:200]))


def emit(*words):
    print(*words, flush=True)


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("urls", nargs="+")
    ap.add_argument("--job", action="append", required=True)
    ap.add_argument("--history", type=int, default=30, help="seconds of backdated history")
    ap.add_argument("--spike-at", type=float, default=10)
    ap.add_argument("--spike-for", type=float, default=30)
    ap.add_argument("--seconds", type=float, default=60, help="length of the live phase")
    ap.add_argument("--cross-ratio", type=float, default=0.0144)
    ap.add_argument("--keep-going", action="store_true", help="drop a URL that goes away")
    a = ap.parse_args()
    jobs = [Job(s) for s in a.job]
    w = Writer(a.urls, a.keep_going)

    now_ms = int(time.time()) * 1000
    if a.history > 0:
        body = b""
        for j in jobs:
            ok, err = [], []
            for k in range(a.history, 0, -1):
                j.step(j.base, False)
                ts = now_ms - k * 1000
                ok.append((ts, float(j.total - math.floor(j.errors))))
                err.append((ts, float(math.floor(j.errors))))
            body += j.series(ok, err)
        w.send(body)

    start = time.time()
    nxt = math.floor(start) + 1
    first = True
    in_spike = {j.name: False for j in jobs}
    while True:
        delay = nxt - time.time()
        if delay > 0:
            time.sleep(delay)
        rel = nxt - start
        if rel > a.seconds:
            break
        spiking = a.spike_at <= rel < a.spike_at + a.spike_for
        body = b""
        for j in jobs:
            j.step(j.spike if spiking else j.base, True)
            ts = int(nxt * 1000)
            body += j.series(
                [(ts, float(j.total - math.floor(j.errors)))], [(ts, float(math.floor(j.errors)))]
            )
        w.send(body)
        t = "%.3f" % time.time()
        if first:
            emit("live", t)
            first = False
        for j in jobs:
            if j.spike == j.base:
                continue
            if spiking and not in_spike[j.name]:
                emit("spike_start", j.name, t)
            if not spiking and in_spike[j.name]:
                emit("spike_end", j.name, t)
            in_spike[j.name] = spiking
        for j in jobs:
            if (
                not j.crossed
                and j.live_total >= 50
                and j.live_errors / j.live_total > a.cross_ratio
            ):
                j.crossed = True
                emit("cross", j.name, t)
        nxt += 1
    emit("done", "%.3f" % time.time())


if __name__ == "__main__":
    try:
        main()
    except (OSError, http.client.HTTPException) as e:
        print("spike.py: %s" % e, file=sys.stderr)
        sys.exit(1)
