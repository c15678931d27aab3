#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real senders write to nines: Debian's Prometheus 2.42 (remote_write) and vmagent (scraping
# node-exporter). What they sent must come back through nines' API with the exact values
# and timestamps that the senders' own stores (Prometheus's TSDB, VictoriaMetrics) hold.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator

nport=$(nn_free_port)
port=$(nn_free_port)
pport=$(nn_free_port)
vport=$(nn_free_port)
aport=$(nn_free_port)

nn_start agg "$AGG" --listen-address "127.0.0.1:$port" --data-dir "$NN_TMP/agg"
nn_start node prometheus-node-exporter --web.listen-address="127.0.0.1:$nport" \
  --collector.disable-defaults --collector.cpu --collector.meminfo --collector.loadavg
nn_wait_http "http://127.0.0.1:$port/-/ready"
nn_wait_http "http://127.0.0.1:$nport/metrics"

cat >"$NN_TMP/prom.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:$pport']}]
  - job_name: node
    static_configs: [{targets: ['127.0.0.1:$nport']}]
remote_write:
  - url: http://127.0.0.1:$port/api/v1/write
    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}
YML
nn_start prom prometheus --config.file="$NN_TMP/prom.yml" --web.listen-address="127.0.0.1:$pport" \
  --storage.tsdb.path="$NN_TMP/prom-data"
nn_wait_http "http://127.0.0.1:$pport/-/ready" 60

cat >"$NN_TMP/vmagent.yml" <<YML
scrape_configs:
  - job_name: vm_node
    scrape_interval: 1s
    static_configs: [{targets: ['127.0.0.1:$nport']}]
YML
nn_start vm victoria-metrics -httpListenAddr="127.0.0.1:$vport" -storageDataPath="$NN_TMP/vm-data" \
  -search.latencyOffset=0s -dedup.minScrapeInterval=0
nn_wait_http "http://127.0.0.1:$vport/health"
nn_start vmagent vmagent -httpListenAddr="127.0.0.1:$aport" -promscrape.config="$NN_TMP/vmagent.yml" \
  -remoteWrite.url="http://127.0.0.1:$port/api/v1/write" \
  -remoteWrite.url="http://127.0.0.1:$vport/api/v1/write" \
  -remoteWrite.tmpDataPath="$NN_TMP/vmagent-data" -remoteWrite.flushInterval=200ms

# Let both senders run, then compare a window that every queue has flushed.
sleep 12
t=$(($(date +%s) - 4))

# raw_samples URL QUERY: prints "labels value@timestamp" lines of a range-vector query.
raw_samples() {
  curl -fsS "$1/api/v1/query" --data-urlencode "query=$2" --data-urlencode "time=$t" |
    python3 -c '
import json, sys
d = json.load(sys.stdin)["data"]["result"]
for s in sorted(d, key=lambda s: sorted(s["metric"].items())):
    m = ",".join("%s=%s" % kv for kv in sorted(s["metric"].items()))
    for ts, v in s["values"]:
        print(m, v + "@" + repr(float(ts)))
'
}

for q in 'up{job=~"prometheus|node"}[6s]' 'prometheus_build_info[6s]' 'node_load1{job="node"}[6s]' \
  'prometheus_tsdb_head_series[6s]'; do
  raw_samples "http://127.0.0.1:$pport" "$q" >"$NN_TMP/want"
  raw_samples "http://127.0.0.1:$port" "$q" >"$NN_TMP/got"
  nn_check "Prometheus $q: samples present" test -s "$NN_TMP/want"
  nn_check "Prometheus $q: nines has the same values and timestamps" diff "$NN_TMP/want" "$NN_TMP/got"
done

close_enough() {
  python3 - "$1" "$2" <<'PY'
import sys
a = [l.split() for l in open(sys.argv[1])]
b = [l.split() for l in open(sys.argv[2])]
ok = len(a) == len(b)
for x, y in zip(a, b):
    (va, ta), (vb, tb) = x[1].split("@"), y[1].split("@")
    if x[0] != y[0] or ta != tb or abs(float(va) - float(vb)) > 1e-11 * max(1.0, abs(float(va))):
        print("differs:", x, y)
        ok = False
sys.exit(0 if ok else 1)
PY
}

for q in 'node_cpu_seconds_total{job="vm_node",mode="idle"}[6s]' 'node_memory_MemFree_bytes{job="vm_node"}[6s]'; do
  raw_samples "http://127.0.0.1:$vport" "$q" >"$NN_TMP/want"
  raw_samples "http://127.0.0.1:$port" "$q" >"$NN_TMP/got"
  nn_check "vmagent $q: samples present" test -s "$NN_TMP/want"
  # VictoriaMetrics stores values as 12-digit decimals, and vmagent's float parser is not
  # always correctly rounded, so VM and an exact store can differ in the last digits: same
  # series and timestamps exactly, values within a relative 1e-11.
  nn_check "vmagent $q: nines matches VictoriaMetrics" close_enough "$NN_TMP/want" "$NN_TMP/got"
done

series=$(curl -fsS "http://127.0.0.1:$port/api/v1/series" --data-urlencode 'match[]={job="node"}' |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')
nn_check "series API lists node-exporter series ($series)" [ "$series" -gt 10 ]
m=$(curl -fsS "http://127.0.0.1:$port/metrics")
nn_check "no remote write was refused" bash -c "! grep -q 'nines_ingest_requests_total{handler=\"remote_write\",code=\"\\(400\\|5xx\\)\"} [1-9]' <<<'$m'"
nn_finish
