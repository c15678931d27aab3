#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The agent scrapes a real prometheus-node-exporter and a generated target and remote-writes
# (snappy) to real receivers: Prometheus 2.42 with --web.enable-remote-write-receiver and
# VictoriaMetrics, plus a decoding sink that checks each request's shape. A reference
# Prometheus scrapes the same targets itself; every receiver must hold the same series and
# values within one scrape's change, and a series that vanishes must end with a stale marker.
source "$(dirname "$0")/lib.inc"
E2E=$NN_SOURCE_DIR/tests/e2e
AGENT=$NN_BINARY_DIR/agent/nines-agent
PY=/usr/bin/python3 # Debian's, with python3-snappy
IVAL=2              # scrape interval of the agent and the reference, seconds

nport=$(nn_free_port)
gport=$(nn_free_port)
refport=$(nn_free_port)
rcvport=$(nn_free_port)
vmport=$(nn_free_port)
sinkport=$(nn_free_port)
agport=$(nn_free_port)
node=127.0.0.1:$nport
gen=127.0.0.1:$gport

nn_start node prometheus-node-exporter --web.listen-address="$node" \
  --collector.disable-defaults --collector.cpu --collector.meminfo --collector.loadavg \
  --collector.uname --collector.time
nn_start sink "$PY" "$E2E/scrape_target.py" sink --port "$sinkport" --out "$NN_TMP/sink.json"
nn_wait_http "http://$node/metrics"

cat >"$NN_TMP/ref.yml" <<YML
global: {scrape_interval: ${IVAL}s, scrape_timeout: 1s}
scrape_configs:
  - job_name: node
    static_configs: [{targets: ['$node']}]
  - job_name: gen
    static_configs: [{targets: ['$gen']}]
YML
echo 'global: {scrape_interval: 1m}' >"$NN_TMP/rcv.yml"
nn_start ref prometheus --config.file="$NN_TMP/ref.yml" --web.listen-address="127.0.0.1:$refport" \
  --storage.tsdb.path="$NN_TMP/ref-data"
nn_start rcv prometheus --config.file="$NN_TMP/rcv.yml" --web.listen-address="127.0.0.1:$rcvport" \
  --storage.tsdb.path="$NN_TMP/rcv-data" --web.enable-remote-write-receiver
nn_start vm victoria-metrics -httpListenAddr="127.0.0.1:$vmport" -storageDataPath="$NN_TMP/vm-data" \
  -search.latencyOffset=0s -dedup.minScrapeInterval=0
nn_wait_http "http://127.0.0.1:$refport/-/ready" 60
nn_wait_http "http://127.0.0.1:$rcvport/-/ready" 60
nn_wait_http "http://127.0.0.1:$vmport/health"
# The generated target starts last so that the agent sees gen_vanishing come and go.
nn_start gen "$PY" "$E2E/scrape_target.py" gen --port "$gport" --vanish-after 12
gen_start=$(date +%s)
nn_wait_http "http://$gen/metrics"

cat >"$NN_TMP/agent.yml" <<YML
listen_address: 127.0.0.1:$agport
data_dir: $NN_TMP/agent-data
logs: {enabled: false}
scrape:
  scrape_interval: ${IVAL}s
  scrape_timeout: 1s
  scrape_configs:
    - job_name: node
      static_configs: [{targets: ['$node']}]
    - job_name: gen
      static_configs: [{targets: ['$gen']}]
remote_write:
  batch_wait: 200ms
  destinations:
    - {name: prometheus, url: 'http://127.0.0.1:$rcvport/api/v1/write', codec: snappy}
    - {name: victoria, url: 'http://127.0.0.1:$vmport/api/v1/write', codec: snappy}
    - {name: sink, url: 'http://127.0.0.1:$sinkport/api/v1/write', codec: snappy}
YML
nn_start agent "$AGENT" --config "$NN_TMP/agent.yml"
nn_wait_http "http://127.0.0.1:$agport/-/ready" 30

# Run long enough for gen_vanishing (12 s) to go and for several scrapes after it.
sleep 30
end=$(date +%s)
t=$((end - 3)) # every queue has flushed what was scraped before t
REF=http://127.0.0.1:$refport
RCV=http://127.0.0.1:$rcvport
VM=http://127.0.0.1:$vmport

# series URL MATCH: sorted "name{labels}" lines the store has for MATCH over the run.
series() {
  curl -fsS "$1/api/v1/series" --data-urlencode "match[]=$2" \
    --data-urlencode "start=$((gen_start - 60))" --data-urlencode "end=$end" |
    "$PY" -c '
import json, sys
for s in json.load(sys.stdin)["data"]:
    n = s.pop("__name__")
    print(n + "{" + ",".join("%s=%r" % kv for kv in sorted(s.items())) + "}")
' | sort -u
}

# instant URL QUERY [TIME]: sorted "labels value" lines of an instant query at TIME (t).
instant() {
  curl -fsS "$1/api/v1/query" --data-urlencode "query=$2" --data-urlencode "time=${3:-$t}" |
    "$PY" -c '
import json, sys
for s in json.load(sys.stdin)["data"]["result"]:
    print(",".join("%s=%s" % kv for kv in sorted(s["metric"].items())), s["value"][1])
' | sort
}

# Series: what Prometheus's own scrapes stored is exactly what each receiver got. Nothing is
# ignored: the agent adds the same five synthetic series per target as Prometheus (up,
# scrape_duration_seconds, scrape_samples_scraped, scrape_samples_post_metric_relabeling,
# scrape_series_added) and no others, and VictoriaMetrics stores what it is sent.
for job in node gen; do
  series "$REF" "{job=\"$job\"}" >"$NN_TMP/ref.$job"
  nn_check "reference has $job series ($(wc -l <"$NN_TMP/ref.$job"))" \
    [ "$(wc -l <"$NN_TMP/ref.$job")" -gt 8 ]
  for r in rcv vm; do
    url=$RCV
    [ $r = vm ] && url=$VM
    series "$url" "{job=\"$job\"}" >"$NN_TMP/$r.$job"
    nn_check "$r has the same $job series as the reference" diff "$NN_TMP/ref.$job" "$NN_TMP/$r.$job"
  done
done

# close REF GOT ABS RATE: same label sets; values within ABS + RATE[labels] * (IVAL + 1) +
# a relative 1e-11 (VictoriaMetrics keeps 12 significant digits).
close() {
  "$PY" - "$1" "$2" "$3" "${4:-}" "$IVAL" <<'PY'
import sys
def load(p):
    d = {}
    for l in open(p):
        k, v = l.rsplit(" ", 1)
        d[k] = float(v)
    return d
a, b, tol, ival = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3]), float(sys.argv[5])
rate = load(sys.argv[4]) if sys.argv[4] else {}
ok = bool(a) and a.keys() == b.keys()
if a.keys() != b.keys():
    print("label sets differ:", sorted(a.keys() ^ b.keys())[:5])
for k in a.keys() & b.keys():
    lim = tol + rate.get(k, 0.0) * (ival + 1) + 1e-11 * max(abs(a[k]), abs(b[k]))
    if abs(a[k] - b[k]) > lim:
        print("differs:", k, a[k], b[k], "limit", lim)
        ok = False
sys.exit(0 if ok else 1)
PY
}

# Values that do not change between scrapes are equal exactly.
for q in 'gen_constant' 'gen_unsorted' 'gen_untyped' 'node_memory_MemTotal_bytes' \
  'node_memory_SwapTotal_bytes' 'count by (job, instance) (node_cpu_seconds_total)' \
  'up{job=~"node|gen"}' 'scrape_samples_scraped{job="gen"}'; do
  instant "$REF" "$q" >"$NN_TMP/want"
  for r in rcv vm; do
    url=$RCV
    [ $r = vm ] && url=$VM
    instant "$url" "$q" >"$NN_TMP/got"
    nn_check "$r: $q equals the reference" close "$NN_TMP/want" "$NN_TMP/got" 0
  done
done
nn_check "up is 1 for node and gen, with job and instance of the target" \
  diff <(instant "$RCV" 'up{job=~"node|gen"}') \
  <(printf '__name__=up,instance=%s,job=gen 1\n__name__=up,instance=%s,job=node 1\n' "$gen" "$node" | sort)

# Counters: within the increase over one scrape interval (the rate from the reference).
for q in 'gen_requests_total' 'gen_latency_seconds_bucket' 'gen_latency_seconds_count' \
  'gen_latency_seconds_sum' 'node_cpu_seconds_total{mode=~"idle|user|system"}' 'node_time_seconds'; do
  instant "$REF" "$q" >"$NN_TMP/want"
  instant "$REF" "label_replace(rate(${q}[10s]), \"__name__\", \"${q%%\{*}\", \"\", \"\")" \
    >"$NN_TMP/rate"
  # rate() drops __name__; the label_replace above puts it back so that the keys match.
  for r in rcv vm; do
    url=$RCV
    [ $r = vm ] && url=$VM
    instant "$url" "$q" >"$NN_TMP/got"
    # 0.05: CPU counters advance in 10 ms ticks even where the reference's rate is 0.
    nn_check "$r: $q within one scrape interval's increase" \
      close "$NN_TMP/want" "$NN_TMP/got" 0.05 "$NN_TMP/rate"
  done
done

# Staleness: gen_vanishing was stored while it existed, and after it went an instant query
# finds nothing on the receivers, as on the scraping reference (Prometheus's 5-minute
# lookback would still return it without a stale marker).
for r in ref rcv vm; do
  case $r in ref) url=$REF ;; rcv) url=$RCV ;; vm) url=$VM ;; esac
  nn_check "$r: gen_vanishing present while the target served it" \
    [ "$(instant "$url" "max_over_time(gen_vanishing[$((t - gen_start + 5))s])" | wc -l)" = 1 ]
  nn_check "$r: gen_vanishing gone after it vanished" \
    [ "$(instant "$url" 'gen_vanishing' | wc -l)" = 0 ]
done

# Request shape, as decoded by the sink: headers, sorted unique label names, __name__,
# and the stale marker (the exact NaN bits 0x7ff0000000000002) for gen_vanishing.
sink_check() {
  "$PY" - "$NN_TMP/sink.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("sink: %d requests, %d series, %d samples, stale %s" % (s["requests"], s["series"],
      s["samples"], s["stale"]))
for p in s["problems"]:
    print("problem:", p)
ok = s["requests"] > 0 and s["samples"] > 100 and not s["problems"]
ok = ok and s["stale"].get("gen_vanishing", 0) == 1
sys.exit(0 if ok else 1)
PY
}
nn_check "sink: headers right, labels sorted in every series, one stale marker for gen_vanishing" \
  sink_check

nn_check "agent dropped no samples and every batch was accepted" bash -c "
  m=\$(curl -fsS http://127.0.0.1:$agport/metrics)
  ! grep -E '^nines_agent_(ship_batches_(failed|deadlettered)_total|ship_records_dropped_total|metrics_samples_dropped_total)[{ ].* [1-9]' <<<\"\$m\""
nn_finish
