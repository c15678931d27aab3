#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Saturation per service and endpoint without hand-written rules: an aggregator with the
# default golden-signal rules and inflight_limit 8 receives, by remote write, cAdvisor and
# kube-state-metrics series for the pods of several services, their traffic and an in-flight
# gauge (tests/e2e/golden_saturation_data.py). The pod -> service mapping must come from
# up{namespace, pod, service} where the pods are scraped and from kube_pod_labels elsewhere,
# with the scraped service winning; CPU and memory against limits must be recorded per pod,
# per service and per endpoint with the hand-computed ratios (containers without limits left
# out), and nines:saturation:ratio must be the largest of CPU, memory and in flight / limit.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
port=$(nn_free_port)
pport=$(nn_free_port)
URL=http://127.0.0.1:$port
PURL=http://127.0.0.1:$pport

cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/agg
storage: {wal_fsync: false}
golden_signals: {interval: 2s, inflight_limit: 8}
YML
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_check "aggregator ready" nn_wait_http "$URL/-/ready"
echo "global: {evaluation_interval: 2s}" >"$NN_TMP/prom.yml"
nn_start prom prometheus --config.file="$NN_TMP/prom.yml" --web.listen-address="127.0.0.1:$pport" \
  --storage.tsdb.path="$NN_TMP/prom-data" --web.enable-remote-write-receiver
nn_check "Prometheus ready" nn_wait_http "$PURL/-/ready" 60
nn_start data /usr/bin/python3 "$NN_SOURCE_DIR/tests/e2e/golden_saturation_data.py" \
  --seconds 60 "$URL/api/v1/write" "$PURL/api/v1/write"
for _ in $(seq 100); do grep -q live "$NN_TMP/data.log" 2>/dev/null && break; sleep 0.1; done
nn_check "the history was written" grep -q live "$NN_TMP/data.log"

# nines' golden-signal rules, as it loaded them, for promtool and Prometheus (given to
# Prometheus once the history is in, so that no rule sample precedes it).
curl -fsS "$URL/api/v1/rules" | python3 -c '
import json, sys
g = [x for x in json.load(sys.stdin)["data"]["groups"] if x["file"] == "golden-signals"][0]
print("groups:\n  - name: %s\n    interval: %gs\n    rules:" % (g["name"], g["interval"]))
for r in g["rules"]:
    print("      - record: %s\n        expr: %s" % (r["name"], json.dumps(r["query"])))
    if r.get("labels"):
        print("        labels: %s" % json.dumps(r["labels"]))
' >"$NN_TMP/golden-rules.yml"
nn_check "promtool accepts the golden-signal rules nines loaded" \
  promtool check rules "$NN_TMP/golden-rules.yml"
echo "rule_files: ['$NN_TMP/golden-rules.yml']" >>"$NN_TMP/prom.yml"
kill -HUP "$PID_prom"

check() {
  python3 - "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1]
def q(expr):
    u = url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    r = json.load(urllib.request.urlopen(u, timeout=10))
    if r.get("status") != "success":
        raise SystemExit("%s: %r" % (expr, r))
    return {tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__")):
            float(s["value"][1]) for s in r["data"]["result"]}
def key(**kv):
    return tuple(sorted(kv.items()))
cart = dict(project="shop", service="cart")
search = dict(project="shop", service="search")
K = dict(convention="kubernetes")
want = {
    # Pod -> service: up{service} for cart (cart-3's kube_pod_labels says cart-v2: up wins),
    # kube_pod_labels for search (app.kubernetes.io/name) and batch (app); the namespace
    # is part of the key; orphan-0 has no service.
    "nines:pod_service:info": {
        key(namespace="shop", pod="cart-%d" % i, **cart, **K): 1.0 for i in range(4)} | {
        key(namespace="shop", pod="search-0", **search, **K): 1.0,
        key(namespace="shop", pod="search-1", **search, **K): 1.0,
        key(namespace="shop", pod="batch-0", project="shop", service="batch", **K): 1.0,
        key(namespace="other", pod="cart-0", project="other", service="cart", **K): 1.0},
    # Per pod, only containers with a limit: cart-0 is 0.2 / 0.5 (not 0.55 / 0.5).
    'nines:cpu:ratio_of_limit{pod=~"cart-0|orphan-0"}': {
        key(namespace="shop", pod="cart-0", **K): 0.4,
        key(namespace="other", pod="cart-0", **K): 1.0,
        key(namespace="shop", pod="orphan-0", **K): 0.2},
    'nines:memory:ratio_of_limit{pod="cart-0"}': {
        key(namespace="shop", pod="cart-0", **K): 0.25,
        key(namespace="other", pod="cart-0", **K): 0.5},
    # Per service: (0.2 + 0.4 + 0.1 + 0.3) / (0.5 + 0.5 + 1 + 1); (0.9 + 0.5) / 2; ...
    "nines:service_cpu:ratio_of_limit": {
        key(**cart, **K): 1.0 / 3, key(**search, **K): 0.7,
        key(project="shop", service="batch", **K): 0.5,
        key(project="other", service="cart", **K): 1.0},
    # (100 + 200) MiB / (400 + 400) MiB (cart-2 has no limit); (768 + 256) / 2048.
    "nines:service_memory:ratio_of_limit": {
        key(**cart, **K): 0.375, key(**search, **K): 0.5,
        key(project="other", service="cart", **K): 0.5},
    # cart: in flight 6 / 8 beats CPU and memory.
    "nines:service_saturation:ratio": {
        key(**cart): 0.75, key(**search): 0.7, key(project="shop", service="batch"): 0.5,
        key(project="other", service="cart"): 1.0},
    "nines:endpoint_cpu:ratio_of_limit": {
        key(convention="prometheus", endpoint="/add", **cart): 1.0 / 3,
        key(convention="prometheus", endpoint="/list", **cart): 1.0 / 3,
        key(convention="spring", uri="/q", **search): 0.7,
        key(convention="spring", uri="/suggest", **search): 0.7},
    "nines:endpoint_memory:ratio_of_limit": {
        key(convention="prometheus", endpoint="/add", **cart): 0.375,
        key(convention="prometheus", endpoint="/list", **cart): 0.375,
        key(convention="spring", uri="/q", **search): 0.5,
        key(convention="spring", uri="/suggest", **search): 0.5},
    "nines:endpoint_inflight:sum": {
        key(convention="prometheus", endpoint="/add", **cart): 2.0,
        key(convention="prometheus", endpoint="/list", **cart): 4.0},
    "nines:saturation:ratio": {
        key(convention="prometheus", endpoint="/add", **cart): 0.75,
        key(convention="prometheus", endpoint="/list", **cart): 0.75,
        key(convention="spring", uri="/q", **search): 0.7,
        key(convention="spring", uri="/suggest", **search): 0.7},
}
# multi-0 is named by two scraped targets: exactly one of them is kept, and its service gets
# multi-0's ratio (0.6 / 1).
multi = [dict(k)["service"] for k in q('nines:pod_service:info{pod="multi-0"}')]
fails = 0
if len(multi) != 1:
    print("multi-0: mapped to %r, want exactly one service" % multi)
    fails += 1
else:
    want["nines:pod_service:info"][key(namespace="shop", pod="multi-0", project="shop",
                                       service=multi[0], **K)] = 1.0
    want["nines:service_cpu:ratio_of_limit"][key(project="shop", service=multi[0], **K)] = 0.6
    want["nines:service_saturation:ratio"][key(project="shop", service=multi[0])] = 0.6
for expr, w in want.items():
    got = q(expr)
    for k, v in w.items():
        g = got.get(k)
        if g is None or abs(g - v) > 1e-6 * max(1.0, abs(v)):
            print("%s %s: got %r, want %g" % (expr, dict(k), g, v))
            fails += 1
    for k in set(got) - set(w):
        print("%s: unexpected series %s = %g" % (expr, dict(k), got[k]))
        fails += 1
print("golden saturation at %s: %d mismatches" % (url, fails))
sys.exit(1 if fails else 0)
PY
}
for who in nines prometheus; do
  u=$URL
  [ "$who" = prometheus ] && u=$PURL
  ok=1
  for _ in $(seq 30); do
    if check "$u" >"$NN_TMP/check-$who.txt" 2>&1; then ok=0; break; fi
    sleep 1
  done
  cat "$NN_TMP/check-$who.txt"
  nn_check "$who: saturation per pod, service and endpoint equals the hand-computed ratios" \
    [ "$ok" -eq 0 ]
done
for u in "$URL" "$PURL"; do
  nn_check "$u: the golden-signal rules evaluate without failures" bash -c \
    "curl -fsS '$u/api/v1/rules' | python3 -c 'import json,sys; g=[x for x in json.load(sys.stdin)[\"data\"][\"groups\"] if x[\"name\"]==\"nines-golden-signals\"]; bad=[r[\"name\"] for x in g for r in x[\"rules\"] if r.get(\"health\")!=\"ok\"]; n=sum(len(x[\"rules\"]) for x in g); print(n, \"rules, failing:\", bad); sys.exit(1 if bad or n < 50 else 0)'"
done
nn_finish
