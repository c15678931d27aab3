#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Remote-write generator for the golden-saturation test: cAdvisor and kube-state-metrics
# series for the pods of two services with traffic (cart: Prometheus client metrics scraped
# per pod, mapped to its pods through up{pod, service}; search: Spring metrics without pod
# labels, mapped through kube_pod_labels), a pod of a service without traffic (batch, mapped
# through label_app), a pod that two scraped targets name differently, a pod of the same
# name in another namespace, an unmapped pod, an in-flight gauge per endpoint, and
# containers without limits that must not count. The expected ratios are in
# tests/integration/golden_saturation.sh. Samples every 5 s: 10 minutes backdated, then live
# for --seconds, to every URL given. Prints "live" once the history is in.
import argparse
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_data import send, timeseries  # noqa: E402

Mi = 2**20
# namespace, pod, container, CPU cores used, CPU limit, memory used (MiB), memory limit (MiB);
# None: no such series.
CONTAINERS = [
    ("shop", "cart-0", "app", 0.2, 0.5, 100, 400),
    ("shop", "cart-0", "sidecar", 0.3, None, 50, None),  # no limits: left out
    ("shop", "cart-0", "POD", 0.05, None, None, None),   # the pause container
    ("shop", "cart-1", "app", 0.4, 0.5, 200, 400),
    ("shop", "cart-2", "app", 0.1, 1.0, 300, None),      # no memory limit
    ("shop", "cart-3", "app", 0.3, 1.0, None, None),
    ("shop", "search-0", "app", 0.9, 1.0, 768, 1024),
    ("shop", "search-1", "app", 0.5, 1.0, 256, 1024),
    ("shop", "batch-0", "job", 0.25, 0.5, None, None),
    ("other", "cart-0", "app", 0.1, 0.1, 50, 100),
    ("shop", "orphan-0", "app", 0.2, 1.0, None, None),   # no service known
    ("shop", "multi-0", "app", 0.6, 1.0, None, None),    # two scraped services
]
KSM = [("job", "kube-state-metrics"), ("service", "kube-state-metrics"),
       ("instance", "10.0.0.9:8080")]
KUBELET = [("job", "kubelet"), ("service", "kubelet"), ("node", "n1"),
           ("metrics_path", "/metrics/cadvisor")]
# kube_pod_labels: namespace, pod, pod labels.
POD_LABELS = [
    ("shop", "search-0", [("label_app_kubernetes_io_name", "search"), ("label_app", "s")]),
    ("shop", "search-1", [("label_app_kubernetes_io_name", "search")]),
    ("shop", "batch-0", [("label_app", "batch")]),
    ("shop", "cart-3", [("label_app_kubernetes_io_name", "cart-v2")]),  # up{service} wins
    ("other", "cart-0", [("label_app_kubernetes_io_name", "cart")]),
]
RPS = 10.0


def series_at(elapsed_s):
    out = []
    for ns, pod, cont, cpu, cpu_lim, mem, mem_lim in CONTAINERS:
        c = KUBELET + [("namespace", ns), ("pod", pod), ("container", cont)]
        out.append((c + [("__name__", "container_cpu_usage_seconds_total")], cpu * elapsed_s))
        if mem is not None:
            out.append((c + [("__name__", "container_memory_working_set_bytes")], mem * Mi))
        k = KSM + [("namespace", ns), ("pod", pod), ("container", cont),
                   ("__name__", "kube_pod_container_resource_limits")]
        if cpu_lim is not None:
            out.append((k + [("resource", "cpu"), ("unit", "core")], cpu_lim))
        if mem_lim is not None:
            out.append((k + [("resource", "memory"), ("unit", "byte")], mem_lim * Mi))
    # cAdvisor's whole-pod series (no container label) must not count either.
    out.append((KUBELET + [("namespace", "shop"), ("pod", "cart-0"),
                           ("__name__", "container_cpu_usage_seconds_total")], 5 * elapsed_s))
    for ns, pod, labels in POD_LABELS:
        out.append((KSM + [("namespace", ns), ("pod", pod), ("__name__", "kube_pod_labels")]
                    + labels, 1.0))
    # cart: scraped per pod, so up and its request counter carry namespace, pod and service.
    for i in range(4):
        t = [("namespace", "shop"), ("pod", "cart-%d" % i), ("project", "shop"),
             ("service", "cart"), ("job", "cart"), ("instance", "10.0.1.%d:8080" % i)]
        out.append((t + [("__name__", "up")], 1.0))
        if i < 3:
            for ep in ("/add", "/list"):
                out.append((t + [("__name__", "http_requests_total"), ("endpoint", ep),
                                 ("code", "200")], RPS / 3 * elapsed_s))
    # Two targets on one pod that name different services: one mapping is kept, or every
    # join through the mapping would fail on a duplicate.
    for svc in ("multi-a", "multi-b"):
        out.append(([("namespace", "shop"), ("pod", "multi-0"), ("project", "shop"),
                     ("service", svc), ("__name__", "up")], 1.0))
    for pod, ep, v in (("cart-0", "/add", 2.0), ("cart-1", "/list", 4.0)):
        out.append(([("namespace", "shop"), ("pod", pod), ("project", "shop"),
                     ("service", "cart"), ("endpoint", ep),
                     ("__name__", "http_requests_in_flight")], v))
    # search: no pod labels (say, from a gateway), known only through kube_pod_labels.
    for uri in ("/q", "/suggest"):
        out.append(([("project", "shop"), ("service", "search"), ("uri", uri), ("status", "200"),
                     ("__name__", "http_server_requests_seconds_count")], RPS * elapsed_s))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url", nargs="+", help="remote-write URLs, each sent everything")
    p.add_argument("--seconds", type=float, default=60)
    a = p.parse_args()
    targets = [(u.hostname, u.port or 80, u.path) for u in map(urllib.parse.urlsplit, a.url)]
    now = int(time.time() * 1000)
    start = now - 600 * 1000
    hist = {}
    for t in range(start, now, 5000):
        for labels, v in series_at((t - start) / 1000):
            hist.setdefault(tuple(labels), []).append((t, v))
    body = b"".join(timeseries(list(k), s) for k, s in hist.items())
    for target in targets:
        send(target, body)
    print("live", flush=True)
    t = now
    end = time.time() + a.seconds
    while time.time() < end:
        t = max(t + 5000, int(time.time() * 1000))
        body = b"".join(timeseries(lbl, [(t, v)]) for lbl, v in series_at((t - start) / 1000))
        for target in targets:
            send(target, body)
        time.sleep(max(0, t / 1000 + 5 - time.time()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
