#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The PromQL differential test: Prometheus 2.42 scrapes three demo-service instances and
# remote-writes the same samples to nines; then the 539 queries expanded from
# promql-test-queries.yml run as range queries against both and must match (relative 1e-5,
# NaN equals NaN). Prints the match percentage; fails below NN_COMPLIANCE_MIN_PCT.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
QUERIES=$NN_SOURCE_DIR/../shared/conformance/promql-test-queries.yml
: "${NN_COMPLIANCE_SECONDS:=90}" "${NN_COMPLIANCE_MIN_PCT:=95}"

port=$(nn_free_port)
pport=$(nn_free_port)
d1=$(nn_free_port) d2=$(nn_free_port) d3=$(nn_free_port)
# The peer is 2.42: answer with Prometheus 2.x semantics where 3.0 changed them.
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/agg
query:
  prometheus_v2: true
YML
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_start demo /usr/bin/python3 "$NN_SOURCE_DIR/tests/compliance/demo_service.py" "$d1" "$d2" "$d3"
nn_wait_http "http://127.0.0.1:$port/-/ready"
nn_wait_http "http://127.0.0.1:$d1/metrics"
cat >"$NN_TMP/prom.yml" <<YML
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ['127.0.0.1:$d1', '127.0.0.1:$d2', '127.0.0.1:$d3']
remote_write:
  - url: http://127.0.0.1:$port/api/v1/write
    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}
YML
nn_start prom prometheus --config.file="$NN_TMP/prom.yml" --web.listen-address="127.0.0.1:$pport" \
  --storage.tsdb.path="$NN_TMP/prom-data"
nn_wait_http "http://127.0.0.1:$pport/-/ready" 60
t0=$(date +%s)
sleep "$NN_COMPLIANCE_SECONDS"
# Stop the targets, so no store has data the other lacks: Prometheus marks the series stale
# and its remote-write queue (which tails its WAL, seconds behind) catches up meanwhile.
kill "$PID_demo"
stop=$(date +%s)
sleep 25
end=$((stop - 5))
start=$((end - NN_COMPLIANCE_SECONDS + 20))
[ "$start" -gt "$t0" ] || start=$((t0 + 5))
/usr/bin/python3 "$NN_SOURCE_DIR/tests/compliance/compliance.py" "$QUERIES" \
  "http://127.0.0.1:$pport" "http://127.0.0.1:$port" "$end" "$start" 10 127.0.0.1 \
  --min-pct "$NN_COMPLIANCE_MIN_PCT" | tee "$NN_TMP/compliance.txt"
rc=${PIPESTATUS[0]}
nn_check "PromQL compliance at least $NN_COMPLIANCE_MIN_PCT% of 539 queries" [ "$rc" -eq 0 ]
# Prometheus remote-writes metric metadata every minute: nines serves what it scraped.
meta_same() {
  curl -s "http://127.0.0.1:$pport/api/v1/metadata?metric=demo_api_request_duration_seconds" \
    >"$NN_TMP/prom-meta.json"
  curl -s "http://127.0.0.1:$port/api/v1/metadata?metric=demo_api_request_duration_seconds" \
    >"$NN_TMP/nines-meta.json"
  python3 - "$NN_TMP/prom-meta.json" "$NN_TMP/nines-meta.json" <<'PY'
import json, sys
p, n = (json.load(open(f))["data"].get("demo_api_request_duration_seconds") for f in sys.argv[1:])
sys.exit(0 if n and n[0]["type"] == "histogram" and (not p or p[0] == n[0]) else 1)
PY
}
nn_check "remote-written metadata: /api/v1/metadata has the histogram's type and help" meta_same
nn_finish
