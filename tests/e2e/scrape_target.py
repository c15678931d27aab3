#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# A scrape target and a remote-write sink for the agent's scrape -> remote write test.
# "gen" serves a small deterministic exposition (constants, counters that grow with time, a
# histogram, a series that vanishes), and "sink" accepts remote-write requests and checks
# their shape. Runs with /usr/bin/python3 (python3-snappy); the protobuf is decoded by hand.
"""Usage:
  scrape_target.py gen --port P [--vanish-after S]
  scrape_target.py sink --port P --out FILE

gen: counters grow by fixed steps per whole second since start, so two scrapers of the
same target see values that differ by at most the increase over their time offset.
gen_vanishing exists only for the first S seconds (default 10).

sink: accepts POST /api/v1/write (snappy), answers 204, and writes a JSON summary to FILE
after every request: requests, series, samples, stale markers per metric name, and every
problem found (unsorted or duplicate label names, missing __name__, wrong headers).
"""

import argparse
import http.server
import json
import math
import socketserver
import struct
import sys
import threading
import time

STALE_NAN_BITS = 0x7FF0000000000002


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def gen_body(start, vanish_after):
    t = int(time.time() - start)
    lines = [
        "# HELP gen_constant A gauge that never changes.",
        "# TYPE gen_constant gauge",
        'gen_constant{kind="answer"} 42',
        'gen_constant{kind="negative"} -1.5',
        'gen_constant{kind="tiny"} 1e-300',
        "# HELP gen_requests_total Requests, 10 per second (code 200) and 1 (code 500).",
        "# TYPE gen_requests_total counter",
        'gen_requests_total{code="200",method="get"} %d' % (10 * t),
        'gen_requests_total{code="500",method="get"} %d' % t,
        "# HELP gen_latency_seconds Request latency.",
        "# TYPE gen_latency_seconds histogram",
        'gen_latency_seconds_bucket{le="0.1"} %d' % (5 * t),
        'gen_latency_seconds_bucket{le="0.5"} %d' % (8 * t),
        'gen_latency_seconds_bucket{le="1"} %d' % (9 * t),
        'gen_latency_seconds_bucket{le="+Inf"} %d' % (10 * t),
        "gen_latency_seconds_sum %g" % (2.5 * t),
        "gen_latency_seconds_count %d" % (10 * t),
        "# HELP gen_unsorted Labels deliberately out of order in the exposition.",
        "# TYPE gen_unsorted gauge",
        'gen_unsorted{zone="z",alpha="a",mid="m"} 7',
        "# A series without HELP or TYPE.",
        'gen_untyped{path="/a b",quote="say \\"hi\\""} 3',
    ]
    if t < vanish_after:
        lines += [
            "# TYPE gen_vanishing gauge",
            'gen_vanishing{phase="early"} 1',
        ]
    return ("\n".join(lines) + "\n").encode()


def make_handler(body_fn):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = body_fn(self.server.server_address[1])
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def serve(ports, body_fn):
    servers = [Server(("127.0.0.1", p), make_handler(body_fn)) for p in ports]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


# --- remote-write decoding ---------------------------------------------------------------

def read_varint(b, i):
    x = shift = 0
    while True:
        if i >= len(b) or shift > 63:
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            return x, i
        shift += 7


def fields(b):
    """Yields (field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(b):
        key, i = read_varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        if i > len(b):
            raise ValueError("truncated field")
        yield num, wt, v


class Sink:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.s = {"requests": 0, "series": 0, "samples": 0, "stale": {}, "problems": [],
                  "last": {}}

    def problem(self, msg):
        if len(self.s["problems"]) < 50:
            self.s["problems"].append(msg)

    def take(self, headers, body):
        import snappy

        with self.lock:
            self.s["requests"] += 1
            if headers.get("Content-Encoding") != "snappy":
                self.problem("Content-Encoding %r" % headers.get("Content-Encoding"))
            if headers.get("Content-Type") != "application/x-protobuf":
                self.problem("Content-Type %r" % headers.get("Content-Type"))
            if headers.get("X-Prometheus-Remote-Write-Version") != "0.1.0":
                self.problem("version header %r"
                             % headers.get("X-Prometheus-Remote-Write-Version"))
            raw = snappy.uncompress(body)
            for num, _, ts in fields(raw):
                if num != 1:
                    continue
                self.s["series"] += 1
                labels, samples = [], []
                for n, _, v in fields(ts):
                    if n == 1:
                        kv = {k: val.decode() for k, _, val in fields(v)}
                        labels.append((kv.get(1, ""), kv.get(2, "")))
                    elif n == 2:
                        val, t = 0.0, 0
                        for k, _, x in fields(v):
                            if k == 1:
                                val = x
                            elif k == 2:
                                t = x
                        samples.append((val, t))
                names = [k for k, _ in labels]
                if names != sorted(names) or len(set(names)) != len(names):
                    self.problem("labels not sorted/unique: %s" % names)
                if "__name__" not in names:
                    self.problem("no __name__: %s" % labels)
                if any(v == "" for _, v in labels):
                    self.problem("empty label value: %s" % labels)
                name = dict(labels).get("__name__", "")
                key = ",".join("%s=%s" % kv for kv in labels)
                for val, t in samples:
                    self.s["samples"] += 1
                    bits = struct.unpack("<Q", val)[0] if isinstance(val, bytes) else 0
                    if bits == STALE_NAN_BITS:
                        self.s["stale"][name] = self.s["stale"].get(name, 0) + 1
                    if name.startswith("gen_"):
                        f = struct.unpack("<d", val)[0] if isinstance(val, bytes) else 0.0
                        self.s["last"][key] = [None if math.isnan(f) else f, t]
            with open(self.out + ".tmp", "w") as f:
                json.dump(self.s, f, indent=1, sort_keys=True)
            import os

            os.replace(self.out + ".tmp", self.out)


def serve_sink(port, out):
    sink = Sink(out)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            if n < 0 or n > 64 << 20:
                self.send_error(413)
                return
            body = self.rfile.read(n)
            try:
                sink.take(self.headers, body)
            except Exception as e:  # a malformed request is a finding, not a crash
                with sink.lock:
                    sink.problem("undecodable request: %s" % e)
                self.send_error(400)
                return
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    Server(("127.0.0.1", port), Handler).serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["gen", "sink"])
    ap.add_argument("--port", type=int, action="append", required=True)
    ap.add_argument("--vanish-after", type=float, default=10)
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.mode == "gen":
        start = time.time()
        serve(a.port, lambda _port: gen_body(start, a.vanish_after))
    else:
        if not a.out:
            sys.exit("sink needs --out")
        serve_sink(a.port[0], a.out)


if __name__ == "__main__":
    main()
