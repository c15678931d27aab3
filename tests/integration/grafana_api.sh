#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Grafana's Prometheus data source against nines: Debian's Prometheus 2.42 scrapes itself and
# remote-writes to nines, both run one always-firing alert; then tests/grafana/grafana_api.py
# replays Grafana's request set (health check, buildinfo, metric browser, labels, series,
# metadata, GET and POST-form queries, exemplars, rules, alerts, error cases) against both and
# checks codes, JSON shapes and formatting, and that nines answers as Prometheus does.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
: "${NN_GRAFANA_SECONDS:=20}"

port=$(nn_free_port)
pport=$(nn_free_port)

# Same rule shape on both sides, different names: Prometheus's ALERTS series reach nines by
# remote write and must not collide with the ones nines writes.
for who in Prom Nines; do
  cat >"$NN_TMP/rules-$who.yml" <<YML
groups:
  - name: grafana-test
    interval: 1s
    rules:
      - alert: ${who}AlwaysFiring
        expr: vector(1)
        labels: {severity: ticket}
        annotations: {summary: "always firing"}
YML
done
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/agg
rules:
  rule_files: [$NN_TMP/rules-Nines.yml]
golden_signals:
  enabled: false
YML
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_wait_http "http://127.0.0.1:$port/-/ready"
cat >"$NN_TMP/prom.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [$NN_TMP/rules-Prom.yml]
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:$pport']}]
remote_write:
  - url: http://127.0.0.1:$port/api/v1/write
    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}
YML
nn_start prom prometheus --config.file="$NN_TMP/prom.yml" --web.listen-address="127.0.0.1:$pport" \
  --storage.tsdb.path="$NN_TMP/prom-data"
nn_wait_http "http://127.0.0.1:$pport/-/ready" 60
# The window starts once Prometheus's first scrape has reached nines.
for _ in $(seq 300); do
  curl -fsS "http://127.0.0.1:$port/api/v1/query?query=up" | grep -q '"job":"prometheus"' && break
  sleep 0.1
done
start=$(($(date +%s) + 1))
sleep "$NN_GRAFANA_SECONDS"
# Compare a window that ends a few seconds back: the remote-write queue has flushed it.
end=$(($(date +%s) - 4))
/usr/bin/python3 "$NN_SOURCE_DIR/tests/grafana/grafana_api.py" "http://127.0.0.1:$port" \
  "http://127.0.0.1:$pport" "$start" "$end" | tee "$NN_TMP/grafana_api.txt"
rc=${PIPESTATUS[0]}
nn_check "Grafana's request set: nines answers as Prometheus 2.42 does" [ "$rc" -eq 0 ]
nn_check "the replay ran its checks" grep -qE '^[0-9]{2,} checks' "$NN_TMP/grafana_api.txt"
nn_finish
