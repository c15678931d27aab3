#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for julius/prometheus-demo-service (the PromQL compliance tester's data
source): the same metric names and label shapes, evolving deterministically with time.
Usage: demo_service.py PORT [PORT...]  (serves /metrics on 127.0.0.1:PORT each)."""
import http.server
import math
import random
import sys
import threading
import time

START = time.time()


class Instance:
    def __init__(self, port):
        self.port = port
        self.rng = random.Random(port)
        self.cpu = {"idle": 0.0, "system": 0.0, "user": 0.0}
        self.buckets = [0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                        0.025, 0.05, 0.1, 0.25, 0.5, 1.0]
        self.hist = {}
        self.last = time.time()
        self.batch_ok = START
        self.lock = threading.Lock()

    def advance(self):
        now = time.time()
        dt = max(0.0, now - self.last)
        self.last = now
        for mode, share in (("idle", 2.5), ("system", 0.4), ("user", 1.1)):
            self.cpu[mode] += dt * share * (1 + 0.2 * math.sin(now / 30 + self.port))
        for method, path, status, rate, lat in (
                ("GET", "/api/foo", "200", 40, 0.003), ("POST", "/api/foo", "200", 8, 0.02),
                ("GET", "/api/bar", "200", 25, 0.0015), ("GET", "/api/bar", "500", 1, 0.2),
                ("POST", "/api/bar", "503", 0.5, 0.4)):
            h = self.hist.setdefault((method, path, status),
                                     {"b": [0] * len(self.buckets), "sum": 0.0, "count": 0})
            n = int(rate * dt + self.rng.random())
            for _ in range(n):
                v = self.rng.lognormvariate(math.log(lat), 0.6)
                for i, le in enumerate(self.buckets):
                    if v <= le:
                        h["b"][i] += 1
                h["sum"] += v
                h["count"] += 1
        if int(now) % 37 == 0:
            self.batch_ok = now

    def render(self):
        with self.lock:
            self.advance()
            now = time.time()
            out = []
            out.append("# HELP demo_cpu_usage_seconds_total Total CPU usage.\n"
                       "# TYPE demo_cpu_usage_seconds_total counter\n")
            for mode, v in sorted(self.cpu.items()):
                out.append('demo_cpu_usage_seconds_total{mode="%s"} %.6f\n' % (mode, v))
            out.append("# TYPE demo_memory_usage_bytes gauge\n")
            total = 16e9
            used = 6e9 + 1e9 * math.sin(now / 50 + self.port)
            for t, v in (("buffers", 1.5e8), ("cached", 2.1e9), ("free", total - used - 2.25e9),
                         ("used", used)):
                out.append('demo_memory_usage_bytes{type="%s"} %.1f\n' % (t, v))
            out.append("# TYPE demo_num_cpus gauge\ndemo_num_cpus 4\n")
            out.append("# TYPE demo_disk_usage_bytes gauge\n"
                       "demo_disk_usage_bytes %.1f\n" % (1e11 + (now - START) * 1e5 * (self.port % 7)))
            out.append("# TYPE demo_disk_total_bytes gauge\ndemo_disk_total_bytes 1e+12\n")
            out.append("# TYPE demo_batch_last_success_timestamp_seconds gauge\n"
                       "demo_batch_last_success_timestamp_seconds %.3f\n" % self.batch_ok)
            if int(now / 10) % 2 == 0:
                out.append("# TYPE demo_intermittent_metric gauge\ndemo_intermittent_metric 1\n")
            out.append("# TYPE demo_api_request_duration_seconds histogram\n")
            for (method, path, status), h in sorted(self.hist.items()):
                lbl = 'method="%s",path="%s",status="%s"' % (method, path, status)
                for le, c in zip(self.buckets, h["b"]):
                    out.append('demo_api_request_duration_seconds_bucket{%s,le="%g"} %d\n' % (lbl, le, c))
                out.append('demo_api_request_duration_seconds_bucket{%s,le="+Inf"} %d\n' % (lbl, h["count"]))
                out.append("demo_api_request_duration_seconds_sum{%s} %.9f\n" % (lbl, h["sum"]))
                out.append("demo_api_request_duration_seconds_count{%s} %d\n" % (lbl, h["count"]))
            return "".join(out).encode()


def serve(inst):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = inst.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", inst.port), H).serve_forever()


if __name__ == "__main__":
    threads = [threading.Thread(target=serve, args=(Instance(int(p)),), daemon=True)
               for p in sys.argv[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
