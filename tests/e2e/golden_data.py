#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Remote-write generator for the golden-signals test: one service per default metric
# convention (Prometheus client, Spring, OpenTelemetry old and new names, the agent's
# log-derived metrics), each with 2 endpoints at 10 req/s, 10% 5xx, and a latency histogram
# where 60% of requests take <= 50 ms, 30% 50-100 ms and 10% 100-500 ms (so p50 = 41.67 ms,
# p90 = 100 ms, p99 = 460 ms); plus an in-flight gauge and cAdvisor / kube-state-metrics
# series for CPU and memory against limits. Samples every 5 s: 10 minutes backdated, then
# live for --seconds. Prints "live" once the history is in. Runs with /usr/bin/python3.
import argparse
import http.client
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


def timeseries(labels, samples):
    body = b"".join(field_bytes(1, field_bytes(1, n.encode()) + field_bytes(2, v.encode()))
                    for n, v in sorted(labels))
    body += b"".join(field_bytes(2, b"\x09" + struct.pack("<d", v) + b"\x10" + uvarint(t))
                     for t, v in samples)
    return field_bytes(1, body)


# name, request counter, status label, endpoint label, bucket series, bucket unit (1 or 1000)
CONVENTIONS = [
    ("prometheus", "http_requests_total", "code", "endpoint",
     "http_request_duration_seconds_bucket", 1),
    ("spring", "http_server_requests_seconds_count", "status", "uri",
     "http_server_requests_seconds_bucket", 1),
    ("otel", "http_server_duration_milliseconds_count", "http_status_code", "http_route",
     "http_server_duration_milliseconds_bucket", 1000),
    ("otel_v2", "http_server_request_duration_seconds_count", "http_response_status_code",
     "http_route", "http_server_request_duration_seconds_bucket", 1),
    ("nines_logs", "nines_log_http_requests_total", "status", "endpoint",
     "nines_log_http_request_duration_seconds_bucket", 1),
]
ENDPOINTS = ["/a", "/b"]
RPS, ERR = 10.0, 0.1
BUCKETS = [(0.05, 0.6), (0.1, 0.9), (0.5, 1.0), (float("inf"), 1.0)]  # le, cumulative share


def le_text(le, unit):
    if le == float("inf"):
        return "+Inf"
    return "%g" % (le * unit)


def series_at(t_ms, elapsed_s):
    """All series with their value at t_ms, elapsed_s seconds after the counters started."""
    n = RPS * elapsed_s
    out = []
    for conv, req, status, ep_label, bucket, unit in CONVENTIONS:
        for ep in ENDPOINTS:
            base = [("project", "golden"), ("service", conv), (ep_label, ep)]
            out.append((base + [("__name__", req), (status, "200")], n * (1 - ERR)))
            out.append((base + [("__name__", req), (status, "500")], n * ERR))
            for le, share in BUCKETS:
                out.append((base + [("__name__", bucket), ("le", le_text(le, unit))], n * share))
    out.append(([("__name__", "http_requests_in_flight"), ("project", "golden"),
                 ("service", "prometheus")], 7.0))
    pod = [("namespace", "golden"), ("pod", "api-0")]
    out.append((pod + [("__name__", "container_cpu_usage_seconds_total"), ("container", "api")],
                0.25 * elapsed_s))  # a quarter of a core
    out.append((pod + [("__name__", "container_memory_working_set_bytes"), ("container", "api")],
                256 * 2**20))
    out.append((pod + [("__name__", "kube_pod_container_resource_limits"), ("container", "api"),
                       ("resource", "cpu")], 0.5))
    out.append((pod + [("__name__", "kube_pod_container_resource_limits"), ("container", "api"),
                       ("resource", "memory")], 1024 * 2**20))
    return out


def send(target, body):
    host, port, path = target
    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request("POST", path, snappy.compress(body), {
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})
        r = c.getresponse()
        msg = r.read()
    finally:
        c.close()
    if not 200 <= r.status < 300:
        raise SystemExit("write answered %d: %r" % (r.status, msg[:200]))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--seconds", type=float, default=60)
    a = p.parse_args()
    u = urllib.parse.urlsplit(a.url)
    target = (u.hostname, u.port or 80, u.path)
    now = int(time.time() * 1000)
    start = now - 600 * 1000
    # History: one request per series with all its samples.
    hist = {}
    for t in range(start, now, 5000):
        for labels, v in series_at(t, (t - start) / 1000):
            hist.setdefault(tuple(labels), []).append((t, v))
    send(target, b"".join(timeseries(list(k), s) for k, s in hist.items()))
    print("live", flush=True)
    t = now
    end = time.time() + a.seconds
    while time.time() < end:
        t = max(t + 5000, int(time.time() * 1000))
        send(target, b"".join(timeseries(lbl, [(t, v)])
                              for lbl, v in series_at(t, (t - start) / 1000)))
        time.sleep(max(0, t / 1000 + 5 - time.time()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
