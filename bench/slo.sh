#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# SLO evaluation: 10,000 SLOs with 4 window pairs each (the page and ticket tiers). The primary
# figure is the whole engine's evaluation cycle on one core, in process (bench/slo_bench.c
# --full): a store holding http_requests_total for N jobs, N native availability SLOs over
# them, and nn_slo_eval_at timed per cycle exactly as the aggregator's timer runs it (two SLI
# queries per SLO, ledger, the slo:* and ALERTS series written and committed, alert state and
# notifications), with fresh samples appended between cycles. Secondary: the ledger maths
# alone, and the memory one SLO holds for a 30-day period. The comparison, in the same run:
# Prometheus 2.42 evaluating the Sloth-style rules `nines-aggregator slo export` writes for K
# generated SLOs over scraped counters, its CPU time per evaluation cycle (the summed
# prometheus_rule_group_last_duration_seconds is logged too) scaled linearly to 10,000 SLOs
# (labelled so); the aggregator process's CPU per cycle for the same K SLOs fed by remote write
# is measured and scaled the same way.
source "$(dirname "$0")/lib.sh"

N=10000
if [ "$BENCH_QUICK" = 1 ]; then
  ITERS=5 K=200 SETTLE=25 CYCLES=1 FULL_CYCLES=7
else
  ITERS=20 K=1000 SETTLE=45 CYCLES=3 FULL_CYCLES=15
fi
AGG=$BENCH_BUILD/aggregator/nines-aggregator
DRIVER=$BENCH_TMP/slo_bench

libs=$(find "$BENCH_BUILD" -name 'libnn_*.a' | sort)
if [ -z "$libs" ] || [ ! -x "$AGG" ]; then
  bench_log "slo: $BENCH_BUILD has no aggregator build (run bench/run)"
  exit 1
fi
# shellcheck disable=SC2086
cc -O2 -DNDEBUG -D_GNU_SOURCE -std=gnu11 -Wall -Wextra -I"$NN_ROOT" -I"$BENCH_BUILD" \
  -I"$BENCH_BUILD/proto" "$NN_ROOT/bench/slo_bench.c" -o "$DRIVER" -Wl,--start-group $libs \
  -Wl,--end-group -lprotobuf-c -luv -lh2o -lcurl -lzstd -llz4 -lsnappy -ljansson -lyaml \
  -lpcre2-8 -lxxhash -lssl -lcrypto -lm -lpthread

ms_runs="" kib_runs="" cycle_runs=""
jfield() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]] / float(sys.argv[3]))" "$@"; }
bench_wait_quiet "slo nines"
for ((r = 0; r < BENCH_RUNS; r++)); do
  # The whole cycle: each run reports the median of FULL_CYCLES timed cycles.
  out=$(taskset -c 0 "$DRIVER" --full "$N" "$FULL_CYCLES" 2>/dev/null ||
    "$DRIVER" --full "$N" "$FULL_CYCLES" 2>/dev/null)
  bench_log "slo: full cycle: $out"
  cycle_runs+="$(jfield "$out" ns_per_cycle 1e6) "
  out=$(taskset -c 0 "$DRIVER" "$N" "$ITERS" 2>/dev/null || "$DRIVER" "$N" "$ITERS")
  bench_log "slo: ledger maths: $out"
  ms_runs+="$(jfield "$out" ns_per_cycle 1e6) "
  kib_runs+="$(jfield "$out" bytes_per_slo 1024) "
done

# --- Prometheus over Sloth's rules for K SLOs --------------------------------------------------
prom_runs=""
if command -v prometheus >/dev/null; then
  python3 - "$K" >"$BENCH_TMP/specs.yml" <<'PY'
import sys
k = int(sys.argv[1])
print("version: nines/v1\nservice: bench\nperiod: 30d\nslos:")
for i in range(k):
    print("  - name: slo%d\n    objective: 99.9\n    sli: {availability: {metric: http_requests_total,"
          " selector: '{slo=\"%d\"}'}}\n    alerting: {name: Burn%d, page_alert: {labels: {severity: page}},"
          " ticket_alert: {labels: {severity: ticket}}}" % (i, i, i))
PY
  "$AGG" slo export --format prometheus "$BENCH_TMP/specs.yml" >"$BENCH_TMP/rules.yml"
  groups=$(grep -c '^ *- name:' "$BENCH_TMP/rules.yml" || true)
  mport=$(bench_free_port)
  pport=$(bench_free_port)
  # K SLOs x 2 counters (code 200 and 500) at 100 req/s and 0.2% errors, as an exposition.
  bench_start MPID metrics python3 - "$mport" "$K" <<'PY'
import http.server, sys, time
port, k = int(sys.argv[1]), int(sys.argv[2])
t0 = time.time()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        n = (time.time() - t0) * 100 + 1e6
        lines = []
        for i in range(k):
            lines.append('http_requests_total{slo="%d",code="200"} %d' % (i, n * 0.998))
            lines.append('http_requests_total{slo="%d",code="500"} %d' % (i, n * 0.002))
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
  cat >"$BENCH_TMP/prom.yml" <<YML
global: {scrape_interval: 5s, evaluation_interval: 10s}
rule_files: [$BENCH_TMP/rules.yml]
scrape_configs:
  - job_name: gen
    static_configs: [{targets: ["127.0.0.1:$mport"]}]
YML
  bench_start PPID_ prom prometheus --config.file="$BENCH_TMP/prom.yml" \
    --storage.tsdb.path="$BENCH_TMP/prom-data" --web.listen-address="127.0.0.1:$pport"
  bench_wait_http "http://127.0.0.1:$pport/-/ready" 60
  bench_log "slo: Prometheus 2.42 evaluating $groups rule groups for $K SLOs; settling ${SETTLE}s"
  sleep "$SETTLE"
  bench_wait_quiet "slo prometheus"
  # Per cycle: Prometheus's CPU time over whole evaluation cycles (its groups run concurrently,
  # so summed group durations count waiting on a busy machine; CPU seconds do not). The scrape
  # of 2K series every 5 s is included and small next to the rules.
  for ((r = 0; r < BENCH_RUNS; r++)); do
    c0=$(bench_cpu "$PPID_")
    sleep $((10 * CYCLES))
    c1=$(bench_cpu "$PPID_")
    g=$(curl -fsS "http://127.0.0.1:$pport/metrics" |
      awk '/^prometheus_rule_group_last_duration_seconds/ { t += $NF } END { printf "%.3f\n", t }')
    cyc=$(bench_calc "($c1 - $c0) / $CYCLES")
    ms=$(bench_calc "$cyc * 1000 * $N / $K")
    bench_log "slo: Prometheus used ${cyc} CPU-s per cycle for $K SLOs (summed rule group durations ${g}s); x$((N / K)) = ${ms} ms"
    prom_runs+="$ms "
  done
  bench_stop "$PPID_"
  bench_stop "$MPID"
else
  bench_log "slo: prometheus not installed; no comparison"
fi

# --- The aggregator process for the same K SLOs --------------------------------------------
# The aggregator evaluates K SLOs fed by remote write; its CPU time per cycle (remote write of
# 2K samples/s included) is scaled to N like Prometheus's.
full_runs=""
python3 - "$K" >"$BENCH_TMP/nspecs.yml" <<'PY'
import sys
k = int(sys.argv[1])
print("version: nines/v1\nservice: bench\nperiod: 30d\nslos:")
for i in range(k):
    print("  - name: slo%d\n    objective: 99.9\n    sli: {availability: {metric: http_requests_total,"
          " selector: '{job=\"s%d\"}'}}" % (i, i))
PY
aport=$(bench_free_port)
cat >"$BENCH_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$aport
data_dir: $BENCH_TMP/agg
storage: {wal_fsync: false}
golden_signals: {enabled: false}
slo: {spec_files: [$BENCH_TMP/nspecs.yml], evaluation_interval: 10s}
YML
bench_start APID agg "$AGG" --config "$BENCH_TMP/agg.yml"
bench_wait_http "http://127.0.0.1:$aport/-/ready" 60
jobs=()
for ((i = 0; i < K; i++)); do jobs+=(--job "s$i:100:0.002"); done
bench_start WPID writer /usr/bin/python3 "$NN_ROOT/tests/e2e/spike.py" --history 0 \
  --seconds $((SETTLE + 20 + BENCH_RUNS * CYCLES * 10)) "${jobs[@]}" "http://127.0.0.1:$aport/api/v1/write"
sleep "$SETTLE"
for ((r = 0; r < BENCH_RUNS; r++)); do
  c0=$(bench_cpu "$APID")
  sleep $((10 * CYCLES))
  c1=$(bench_cpu "$APID")
  cyc=$(bench_calc "($c1 - $c0) / $CYCLES")
  ms=$(bench_calc "$cyc * 1000 * $N / $K")
  bench_log "slo: nines-aggregator used ${cyc} CPU-s per cycle for $K SLOs; x$((N / K)) = ${ms} ms"
  full_runs+="$ms "
done
bench_stop "$WPID"
bench_stop "$APID"

ratio() {
  python3 -c "import statistics as s,sys; a=[float(x) for x in sys.argv[1].split()]; b=[float(x) for x in sys.argv[2].split()]; print(round(s.median(b)/s.median(a), 1))" "$1" "$2"
}
peer="Prometheus 2.42 + Sloth rules ($K SLOs, scaled x$((N / K)))"
what="whole engine cycle in process on one core: 2 SLI queries per SLO over 2 counters per job (5 s samples, fresh ones between cycles), ledger, slo:* and ALERTS series written and committed, alert state and notifications; median of $FULL_CYCLES cycles per run"
if [ -n "$prom_runs" ]; then
  bench_emit slo "evaluation time per cycle, $N SLOs" ms lower 100 "$cycle_runs" "$peer" "$prom_runs" \
    "$what; Prometheus: CPU time per 10 s cycle with $K SLOs, scaled; Prometheus/nines = $(ratio "$cycle_runs" "$prom_runs")x"
  # The peer goes with the whole-engine figures: comparing it with the maths alone would flatter us.
  bench_emit slo "aggregator CPU per cycle incl. SLI queries, $N SLOs (scaled from $K)" ms lower "" \
    "$full_runs" "$peer" "$prom_runs" \
    "both processes' CPU time per 10 s evaluation cycle with $K SLOs over the same counters (nines fed by remote write, Prometheus by scraping), scaled x$((N / K)) to $N; Prometheus/nines = $(ratio "$full_runs" "$prom_runs")x; Prometheus's [30d] ranges hold only minutes of samples here, so it is flattered"
else
  bench_emit slo "evaluation time per cycle, $N SLOs" ms lower 100 "$cycle_runs" "" "" \
    "$what; no Prometheus to compare"
  bench_emit slo "aggregator CPU per cycle incl. SLI queries, $N SLOs (scaled from $K)" ms lower "" \
    "$full_runs" "" "" "nines-aggregator CPU time per 10 s cycle with $K SLOs, scaled x$((N / K)); no Prometheus to compare"
fi
bench_emit slo "ledger maths per cycle, $N SLOs" ms lower "" "$ms_runs" "" "" \
  "the ledger maths alone (no SLI queries, no writes) for $N SLOs x 4 window pairs, one core, 30-day period"
bench_emit slo "memory per SLO (30-day window)" KiB lower 64 "$kib_runs" "" "" \
  "ledger (48 h of minutes, period + 3 d of hours, months) plus per-SLO state"
