#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ingest load generator for durability tests: several threads send Prometheus remote-write
# requests (or Loki pushes) to one aggregator in a loop and append every request that got
# a 2xx to a ledger, line by line, only after the answer arrived. A crash test kills the
# aggregator under this load and later checks that every ledger line is still stored.
# Runs with /usr/bin/python3 (python3-snappy); the protobuf is encoded by hand.
"""Usage: rwload.py MODE URL LEDGER [options]

MODE is rw (remote write) or loki (Loki JSON push). Each thread owns its own series (or
stream), so its timestamps only grow. A thread stops at its first connection error (the
aggregator went away), on any non-2xx answer (counted in the summary), or at --seconds.
The ledger has one line per acknowledged sample or entry:
  rw:   <metric> <series-label> <timestamp-ms> <value repr>
  loki: <stream-label> <timestamp-ns> <line>
"""

import argparse
import http.client
import json
import os
import struct
import sys
import threading
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


class Loader:
    def __init__(self, args):
        self.a = args
        u = urllib.parse.urlsplit(args.url)
        self.host, self.port, self.path = u.hostname, u.port, u.path
        self.lock = threading.Lock()
        self.ledger = open(args.ledger, "a", buffering=1)
        self.acked = 0
        self.refused = {}
        self.errors = 0
        self.deadline = time.monotonic() + args.seconds
        # Batch ids must differ between loader runs: a reused id is (rightly) stored once.
        self.instance = "%d.%d" % (os.getpid(), time.time_ns())

    def record(self, lines, status):
        with self.lock:
            if 200 <= status < 300:
                self.ledger.write("".join(lines))
                self.ledger.flush()
                self.acked += 1
            else:
                self.refused[status] = self.refused.get(status, 0) + 1

    def request(self, tid, seq, last_ts):
        a = self.a
        now_ms = int(time.time() * 1000)
        if now_ms <= last_ts:
            # At most one request a millisecond per thread: timestamps that ran ahead of
            # the clock (answers faster than 1 ms) would be reused by the next run, whose
            # samples ledger_check (keyed by series label, not run) cannot tell apart.
            time.sleep((last_ts + 1 - now_ms) / 1000.0)
            now_ms = int(time.time() * 1000)
        ts = max(last_ts + 1, now_ms)
        lines = []
        if a.mode == "rw":
            body = b""
            for k in range(a.series):
                s = "t%d_s%d" % (tid, k)
                # Values that need all 17 digits, so any rounding on the way shows.
                v = seq + k / 7.0 + tid / 1000.0
                body += timeseries([("__name__", a.metric), ("series", s), ("run", a.run)],
                                   [(ts, v)])
                lines.append("%s %s %d %r\n" % (a.metric, s, ts, v))
            data = snappy.compress(body)
            headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                       "X-Prometheus-Remote-Write-Version": "0.1.0"}
        else:
            streams = []
            ts_ns = ts * 1000000
            for k in range(a.series):
                s = "t%d_s%d" % (tid, k)
                line = "run=%s stream=%s seq=%d msg=\"entry %d\"" % (a.run, s, seq, seq * 31 + k)
                streams.append({"stream": {"job": a.metric, "stream": s, "run": a.run},
                                "values": [[str(ts_ns), line]]})
                lines.append("%s %d %s\n" % (s, ts_ns, line))
            data = json.dumps({"streams": streams}).encode()
            headers = {"Content-Type": "application/json",
                       "X-Nines-Batch-Id": "%s-%s-%d-%d" % (a.run, self.instance, tid, seq)}
        return ts, data, headers, lines

    def thread(self, tid):
        conn = None
        seq, last_ts = 0, 0
        while time.monotonic() < self.deadline:
            ts, data, headers, lines = self.request(tid, seq, last_ts)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request("POST", self.path, body=data, headers=headers)
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.errors += 1
                return
            self.record(lines, status)
            if not 200 <= status < 300:
                return
            seq += 1
            last_ts = ts
            if self.a.pause:
                time.sleep(self.a.pause)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=["rw", "loki"])
    p.add_argument("url")
    p.add_argument("ledger")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--series", type=int, default=10, help="series or streams per request")
    p.add_argument("--seconds", type=float, default=30, help="stop after this long at most")
    p.add_argument("--metric", default="rwload_value", help="metric name (rw) or job label (loki)")
    p.add_argument("--run", default="0", help="value of the run label, distinct per run")
    p.add_argument("--pause", type=float, default=0, help="seconds between a thread's requests")
    a = p.parse_args()
    ld = Loader(a)
    ts = [threading.Thread(target=ld.thread, args=(i,)) for i in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps({"acked": ld.acked, "refused": ld.refused, "conn_errors": ld.errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
