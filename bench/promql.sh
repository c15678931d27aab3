#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# PromQL dashboard workload (issue 6): the same 6 h history of ~100,000 series (10 services x
# 250 instances x 40 series: request counters by code and method, latency histograms) is
# remote-written into nines-aggregator and Prometheus 2.42, then each dashboard and SLO query
# runs as query_range over the 6 h at a 30 s step, alternating systems, BENCH_RUNS times
# (at least 5). Reports the median latency per query and the peak RSS while querying
# (VmHWM, reset after loading). Result JSON lines on stdout (contract in bench/run).
source "$(dirname "$0")/lib.sh"

AGG=$BENCH_BUILD/aggregator/nines-aggregator
GEN=$BENCH_BUILD/bench/promqlgen
SERVICES=10
INSTANCES=${BENCH_PROMQL_INSTANCES:-250}
INTERVAL_MS=${BENCH_PROMQL_INTERVAL_MS:-30000}
HOURS=6
RUNS=${BENCH_PROMQL_RUNS:-$((BENCH_RUNS < 5 ? 5 : BENCH_RUNS))}
if [ "$BENCH_QUICK" = 1 ]; then
  INSTANCES=${BENCH_PROMQL_INSTANCES:-25}
fi
SERIES=$((SERVICES * INSTANCES * 40))
SYSTEMS=${BENCH_PROMQL_SYSTEMS:-"nines prometheus"}

for bin in "$AGG" /usr/bin/prometheus; do
  [ -x "$bin" ] || { bench_log "missing $bin"; exit 1; }
done
mkdir -p "$(dirname "$GEN")"
if [ ! -x "$GEN" ] || [ "$NN_ROOT/bench/promqlgen.c" -nt "$GEN" ]; then
  cc -O2 -std=gnu11 -Wall -Wextra -o "$GEN" "$NN_ROOT/bench/promqlgen.c" -lsnappy -lm
fi

# The queries: name|expression. Sloth's SLI for one service, as its recording rules write it.
QUERIES=(
  'rate_by_service|sum by (service) (rate(http_requests_total[5m]))'
  'p99_by_service|histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m])))'
  'error_ratio|sum by (service) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (service) (rate(http_requests_total[5m]))'
  'burn_rate_1h|sum(rate(http_requests_total{code=~"5.."}[1h])) / sum(rate(http_requests_total[1h]))'
  'sloth_ratio_rate30m|(sum(rate(http_requests_total{service="svc1",code=~"(5..|429)"}[30m]))) / (sum(rate(http_requests_total{service="svc1"}[30m])))'
  'sloth_burn_5m_1h|(sum by (service) (rate(http_requests_total{code=~"(5..|429)"}[5m])) / sum by (service) (rate(http_requests_total[5m]))) / 0.001 > 14.4 and (sum by (service) (rate(http_requests_total{code=~"(5..|429)"}[1h])) / sum by (service) (rate(http_requests_total[1h]))) / 0.001 > 14.4'
)

END_MS=$(($(date +%s) / 60 * 60 * 1000))
START_MS=$((END_MS - HOURS * 3600 * 1000))
declare -A PID PORT LAT HWM LOADS

start_system() {
  local kind=$1 port dir
  port=$(bench_free_port)
  dir=$BENCH_TMP/$kind-data
  case $kind in
  nines)
    bench_start PID[$kind] "$kind" "$AGG" --listen-address "127.0.0.1:$port" --data-dir "$dir"
    ;;
  nines-base)
    # An earlier nines build (BENCH_PROMQL_BASE_AGG), for before/after figures on one data set.
    bench_start PID[$kind] "$kind" "$BENCH_PROMQL_BASE_AGG" --listen-address "127.0.0.1:$port" \
      --data-dir "$dir"
    ;;
  prometheus)
    printf 'global: {scrape_interval: 1h}\n' >"$BENCH_TMP/prom-empty.yml"
    bench_start PID[$kind] "$kind" /usr/bin/prometheus --config.file="$BENCH_TMP/prom-empty.yml" \
      --web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$dir" \
      --web.enable-remote-write-receiver --storage.tsdb.retention.time=30d
    ;;
  esac
  PORT[$kind]=$port
  bench_wait_http "http://127.0.0.1:$port/-/ready" 60
}

# wait_idle PID: waits (at most 120 s) until the process uses < 5% of a CPU over 2 s, so that
# compaction or head work started by the load does not land inside a measured query.
wait_idle() {
  local pid=$1 a b i
  for ((i = 0; i < 60; i++)); do
    a=$(bench_cpu "$pid")
    sleep 2
    b=$(bench_cpu "$pid")
    [ "$(python3 -c "print(int(($b - $a) / 2 < 0.05))")" = 1 ] && return 0
  done
  bench_log "process $pid still busy after 120 s; measuring anyway"
}

for kind in $SYSTEMS; do
  start_system "$kind"
  t0=$(date +%s.%N)
  bench_log "loading $SERIES series x ${HOURS}h at $((INTERVAL_MS / 1000))s into $kind"
  # Scrapes are 13 s off the query's step grid, as real ones are: a sample exactly on a
  # window's left edge is inside the window in Prometheus 2.x and outside in 3.x and nines.
  "$GEN" 127.0.0.1 "${PORT[$kind]}" /api/v1/write "$SERVICES" "$INSTANCES" "$((START_MS + 13000))" "$END_MS" \
    "$INTERVAL_MS" 20 >"$BENCH_TMP/gen-$kind.json"
  t1=$(date +%s.%N)
  LOADS[$kind]=$(bench_calc "$t1 - $t0")
  bench_log "$kind loaded in ${LOADS[$kind]} s: $(cat "$BENCH_TMP/gen-$kind.json")"
done
for kind in $SYSTEMS; do
  wait_idle "${PID[$kind]}"
  echo 5 >"/proc/${PID[$kind]}/clear_refs" 2>/dev/null || bench_log "cannot reset VmHWM of $kind"
done

# query KIND EXPR OUT: runs one query_range; prints the wall time in seconds.
query() {
  curl -sS -o "$3" -w '%{http_code} %{time_total}\n' --max-time 300 \
    --data-urlencode "query=$2" --data-urlencode "start=$((START_MS / 1000))" \
    --data-urlencode "end=$((END_MS / 1000))" --data-urlencode "step=30" \
    "http://127.0.0.1:${PORT[$1]}/api/v1/query_range"
}

summary() {
  python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
if d.get("status") != "success":
    print("error: " + d.get("error", "?")); sys.exit()
r = d["data"]["result"]
print(len(r), "series,", sum(len(s["values"]) for s in r), "points")' "$1"
}

# compare A B: how far the two systems' answers are apart (a benchmark of wrong answers is
# worthless): series only one side has, and points that differ beyond 1e-6 relative.
compare() {
  python3 -c 'import json,sys
def load(f):
    d = json.load(open(f))["data"]["result"]
    return {tuple(sorted(s["metric"].items())): dict(s["values"]) for s in d}
a, b = load(sys.argv[1]), load(sys.argv[2])
only = len(set(a) ^ set(b)); diff = 0; pts = 0
for k in set(a) & set(b):
    for t in set(a[k]) | set(b[k]):
        pts += 1
        x, y = a[k].get(t), b[k].get(t)
        if x is None or y is None:
            diff += 1; continue
        x, y = float(x), float(y)
        if not (x == y or (x != x and y != y) or abs(x - y) <= 1e-6 * max(abs(x), abs(y))):
            diff += 1
print(f"answers: {only} series on one side only, {diff} of {pts} points differ")' "$1" "$2"
}

bench_wait_quiet "promql queries"
for q in "${QUERIES[@]}"; do
  name=${q%%|*} expr=${q#*|}
  for ((run = 1; run <= RUNS; run++)); do
    for kind in $SYSTEMS; do
      out=$BENCH_TMP/$name-$kind.json
      code=000 secs=0
      read -r code secs < <(query "$kind" "$expr" "$out") || true
      if [ "$code" != 200 ]; then
        bench_log "$name on $kind: HTTP $code: $(head -c 300 "$out")"
        exit 1
      fi
      LAT[$name.$kind]+="$(bench_calc "$secs * 1000") "
      [ "$run" = 1 ] && bench_log "$name $kind: $(summary "$out")"
    done
  done
  for kind in $SYSTEMS; do
    [ "$kind" != prometheus ] && [ -f "$BENCH_TMP/$name-prometheus.json" ] &&
      bench_log "$name $kind vs prometheus: $(compare "$BENCH_TMP/$name-$kind.json" "$BENCH_TMP/$name-prometheus.json")"
    bench_log "$name $kind: ${LAT[$name.$kind]:-} ms"
  done
done
for kind in $SYSTEMS; do
  HWM[$kind]=$(bench_calc "$(bench_hwm "${PID[$kind]}") / 1048576")
done

note="$SERIES series, ${HOURS}h at $((INTERVAL_MS / 1000))s scrape, query_range step 30s"
for q in "${QUERIES[@]}"; do
  name=${q%%|*}
  bench_emit promql "$name latency" ms lower "" "${LAT[$name.nines]:-}" prometheus \
    "${LAT[$name.prometheus]:-}" "$note"
done
bench_emit promql "peak RSS while querying" MiB lower "" "${HWM[nines]:-}" prometheus \
  "${HWM[prometheus]:-}" "VmHWM reset after loading; $note"
if [ -n "${LAT[rate_by_service.nines-base]:-}" ]; then
  for q in "${QUERIES[@]}"; do
    name=${q%%|*}
    bench_emit promql "$name latency (before/after)" ms lower "" "${LAT[$name.nines]:-}" \
      nines-base "${LAT[$name.nines-base]:-}" "$note"
  done
  bench_emit promql "peak RSS while querying (before/after)" MiB lower "" "${HWM[nines]:-}" \
    nines-base "${HWM[nines-base]:-}" "$note"
fi
bench_emit promql "load time" s lower "" "${LOADS[nines]:-}" prometheus "${LOADS[prometheus]:-}" \
  "remote write of the whole history, one connection"
