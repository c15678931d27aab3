#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Aggregator log ingest, for the capacity model in docs/scaling.md: nines-agent tails a CRI
# file of JSON access-log lines (`nines-benchgen cri`, ~280 B a line; 200 MiB, quick 50 MiB)
# and pushes it (zstd, 1 MiB batches) to nines-aggregator's /loki/api/v1/push. Figures are
# the aggregator's alone, from the moment the agent starts until it reports every line
# accepted: CPU-seconds per 1M lines, lines/s (bounded by the agent on a 2-CPU machine, so a
# floor), growth of peak RSS, and bytes on disk per line after a clean shutdown (WAL plus
# compressed chunks: it varies with how much the WAL still held at the end, so it is an upper
# bound, not the steady-state chunk size). No peer: Loki is not installable here.
source "$(dirname "$0")/lib.sh"

AGENT=$BENCH_BUILD/agent/nines-agent
AGG=$BENCH_BUILD/aggregator/nines-aggregator
if [ "$BENCH_QUICK" = 1 ]; then BYTES=$((50 << 20)); else BYTES=$((200 << 20)); fi
BYTES=${BENCH_AGGLOGS_BYTES:-$BYTES}
TIMEOUT=900
for bin in "$AGENT" "$AGG" "$BENCH_GEN"; do
  [ -x "$bin" ] || { bench_log "missing $bin"; exit 1; }
done

logdir=$BENCH_TMP/containers
mkdir -p "$logdir"
logfile=$logdir/web-7d9f00_bench_web-$(printf '%064d' 0 | tr 0 a).log
gen=$("$BENCH_GEN" cri "$logfile" "$BYTES")
LINES=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["lines"])' "$gen")
bench_log "agglogs: $LINES lines, $((BYTES >> 20)) MiB"

cpu_runs="" rate_runs="" rss_runs="" disk_runs=""
for ((run = 1; run <= BENCH_RUNS; run++)); do
  gport=$(bench_free_port) aport=$(bench_free_port)
  bench_start GPID aggregator "$AGG" --listen-address "127.0.0.1:$gport" \
    --data-dir "$BENCH_TMP/agg-$run"
  bench_wait_http "http://127.0.0.1:$gport/-/ready" 60
  cat >"$BENCH_TMP/agent.yml" <<YML
listen_address: 127.0.0.1:$aport
data_dir: $BENCH_TMP/agent-$run
logs:
  include: [$logfile]
  labels: {cluster: bench}
  destinations: [{name: aggregator, url: "http://127.0.0.1:$gport/loki/api/v1/push", codec: zstd}]
YML
  bench_wait_quiet "agglogs run $run"
  c0=$(bench_cpu "$GPID") r0=$(bench_rss "$GPID") t0=$(date +%s.%N)
  bench_start APID agent "$AGENT" --config "$BENCH_TMP/agent.yml"
  sent=0
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    sleep 0.1
    sent=$(bench_metric "http://127.0.0.1:$aport/metrics" '^nines_agent_ship_records_sent_total' 2>/dev/null) || sent=0
    [ "$sent" -ge "$LINES" ] && break
  done
  t1=$(date +%s.%N) c1=$(bench_cpu "$GPID") hwm=$(bench_hwm "$GPID")
  bench_stop "$APID"
  if [ "$sent" -lt "$LINES" ]; then
    bench_log "agglogs run $run: only $sent of $LINES lines delivered in ${TIMEOUT}s"
    exit 1
  fi
  bench_stop "$GPID" 60
  disk=$(bench_du "$BENCH_TMP/agg-$run") # after a clean shutdown: the WAL is cut into chunks
  rm -rf "$BENCH_TMP/agg-$run" "$BENCH_TMP/agent-$run"
  cpu_runs+="$(bench_calc "($c1 - $c0) / ($LINES / 1e6)") "
  rate_runs+="$(bench_calc "$LINES / ($t1 - $t0)") "
  rss_runs+="$(bench_calc "($hwm - $r0) / 1048576") "
  disk_runs+="$(bench_calc "$disk / $LINES") "
  bench_log "agglogs run $run: $(bench_calc "$c1 - $c0") CPU-s, $(bench_calc "$t1 - $t0") s, peak RSS $hwm B (start $r0), $disk B on disk"
done

bench_emit agglogs "aggregator CPU per 1M log lines" CPU-s lower "" "$cpu_runs" "" ""
bench_emit agglogs "aggregator log lines/s (agent-bound)" lines/s higher "" "$rate_runs" "" ""
bench_emit agglogs "aggregator peak RSS growth, log ingest" MiB lower "" "$rss_runs" "" ""
bench_emit agglogs "aggregator disk per log line (WAL + chunks, at shutdown)" B lower "" "$disk_runs" "" ""
