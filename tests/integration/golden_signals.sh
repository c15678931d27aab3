#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Golden signals without hand-written rules: an aggregator with no rule files and the default
# conventions receives, by remote write, one service per convention (Prometheus client,
# Spring, OpenTelemetry old and new names, the agent's log-derived metrics; tests/e2e/
# golden_data.py), an in-flight gauge and cAdvisor / kube-state-metrics series. Every
# service and endpoint must get nines:* series with the known traffic (10 req/s), error ratio
# (10%) and p50/p90/p99 latency in seconds (OpenTelemetry's milliseconds converted), and
# saturation must be recorded from the in-flight gauge and from CPU and memory against limits.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
port=$(nn_free_port)
URL=http://127.0.0.1:$port

cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/agg
storage: {wal_fsync: false}
golden_signals: {interval: 2s}
YML
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_check "aggregator ready" nn_wait_http "$URL/-/ready"
nn_start data /usr/bin/python3 "$NN_SOURCE_DIR/tests/e2e/golden_data.py" --seconds 60 \
  "$URL/api/v1/write"
for _ in $(seq 100); do grep -q live "$NN_TMP/data.log" 2>/dev/null && break; sleep 0.1; done
nn_check "the history was written" grep -q live "$NN_TMP/data.log"

nn_check "the golden-signal rules are loaded (no rule files configured)" bash -c \
  "curl -fsS '$URL/api/v1/rules' | grep -q '\"name\":\"nines-golden-signals\"'"

check() {
  python3 - "$URL" <<'PY'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1]
def q(expr):
    u = url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    r = json.load(urllib.request.urlopen(u, timeout=10))
    return {tuple(sorted((k, v) for k, v in s["metric"].items())): float(s["value"][1])
            for s in r["data"]["result"]}
ep_label = {"prometheus": "endpoint", "spring": "uri", "otel": "http_route",
            "otel_v2": "http_route", "nines_logs": "endpoint"}
want = {"nines:requests:rate5m": 10.0, "nines:errors:ratio_rate5m": 0.1,
        "nines:errors:rate5m": 1.0, "nines:latency_seconds:p50": 0.05 * 0.5 / 0.6,
        "nines:latency_seconds:p90": 0.1, "nines:latency_seconds:p99": 0.1 + 0.4 * 0.9}
fails = 0
for name, v in want.items():
    got = q('%s{project="golden"}' % name)
    for conv, ep in ep_label.items():
        for e in ("/a", "/b"):
            key = tuple(sorted({"__name__": name, "convention": conv, "project": "golden",
                                "service": conv, ep: e}.items()))
            g = got.get(key)
            ok = g is not None and abs(g - v) <= 1e-6 * max(1, abs(v))
            fails += not ok
            if not ok:
                print("%s %s %s: got %r, want %g (have %r)" % (name, conv, e, g, v, list(got)[:3]))
    if len(got) != 2 * len(ep_label):
        print("%s: %d series, want %d" % (name, len(got), 2 * len(ep_label)))
        fails += 1
for expr, v in (('nines:inflight:sum{project="golden",service="prometheus"}', 7.0),
                ('nines:cpu:ratio_of_limit{namespace="golden",pod="api-0"}', 0.5),
                ('nines:memory:ratio_of_limit{namespace="golden",pod="api-0"}', 0.25)):
    got = list(q(expr).values())
    ok = len(got) == 1 and abs(got[0] - v) <= 1e-6
    fails += not ok
    if not ok:
        print("%s: got %r, want %g" % (expr, got, v))
print("golden signals: %d mismatches" % fails)
sys.exit(1 if fails else 0)
PY
}
ok=1
for _ in $(seq 30); do
  if check >"$NN_TMP/check.txt"; then ok=0; break; fi
  sleep 1
done
cat "$NN_TMP/check.txt"
nn_check "every convention's service and endpoint has traffic, errors and p50/p90/p99; saturation recorded" [ "$ok" -eq 0 ]
nn_finish
