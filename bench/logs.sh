#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Agent logs (issue 3): nines-agent tails a CRI file of JSON access-log lines, parses, batches,
# compresses with zstd and pushes over HTTP, (a) to a null sink that answers 204 and (b) to
# nines-aggregator. Measured until the agent reports every line accepted. Then idle cost:
# 1,000 idle files watched. Fluent Bit is not installable here, so its figures are the
# reference measured earlier on this machine, labelled as such.
# BENCH_LOGS_METRICS=1: log-derived metrics instead. Each run tails the same file twice to the
# null sink, once with logs.metrics off and once on (JSON fields, default config: the
# generator's 100,000 paths fold into 2,000 series + endpoint="__other__"); the figure is
# CPU per 1M lines with metrics on, its peer the same agent with them off, in the same run.
# The aggregator and idle parts are skipped in this mode.
# Prints result JSON lines (contract in bench/run); progress goes to stderr.
source "$(dirname "$0")/lib.sh"

AGENT=$BENCH_BUILD/agent/nines-agent
AGG=$BENCH_BUILD/aggregator/nines-aggregator
if [ "$BENCH_QUICK" = 1 ]; then
  BYTES=${BENCH_LOG_BYTES:-$((100 << 20))} IDLE_SECONDS=${BENCH_IDLE_SECONDS:-15}
else
  BYTES=${BENCH_LOG_BYTES:-$((1 << 30))} IDLE_SECONDS=${BENCH_IDLE_SECONDS:-30}
fi
IDLE_FILES=1000
METRICS=${BENCH_LOGS_METRICS:-0}
DELIVERY_TIMEOUT=900 # seconds; a run that takes longer is a failure, not a figure

for bin in "$AGENT" "$AGG" "$BENCH_GEN"; do
  [ -x "$bin" ] || { bench_log "missing $bin"; exit 1; }
done

# kubelet's /var/log/containers name, so the agent derives pod/namespace/container labels.
logdir="$BENCH_TMP/containers"
mkdir -p "$logdir"
logfile="$logdir/web-7d9f00_bench_web-$(printf '%064d' 0 | tr 0 a).log"
bench_log "writing $((BYTES >> 20)) MiB of CRI lines"
gen=$("$BENCH_GEN" cri "$logfile" "$BYTES")
LINES=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["lines"])' "$gen")
bench_log "$LINES lines in $logfile"

# write_config FILE DATA_DIR LISTEN INCLUDE URL [METRICS]
write_config() {
  local metrics=""
  [ "${6:-0}" = 1 ] && metrics=$'\n  metrics: {enabled: true}'
  cat >"$1" <<YML
listen_address: $3
data_dir: $2
logs:
  include: [$4]
  labels: {cluster: bench}
  destinations:
    - name: sink
      url: $5
      codec: zstd$metrics
YML
}

# run_agent NAME URL RUN [METRICS]: tails the file into URL; appends cpu/rss/rate to the named arrays.
declare -A CPU RSS RATE
run_agent() {
  local name=$1 url=$2 run=$3 metrics=${4:-0} port dir apid
  port=$(bench_free_port)
  dir="$BENCH_TMP/agent-$name-$run"
  write_config "$BENCH_TMP/agent-$name.yml" "$dir" "127.0.0.1:$port" "$logfile" "$url" "$metrics"
  bench_wait_quiet "logs $name run $run"
  local t0 t1 sent=0 i
  t0=$(date +%s.%N)
  bench_start apid "agent-$name" "$AGENT" --config "$BENCH_TMP/agent-$name.yml"
  for ((i = 0; i < DELIVERY_TIMEOUT * 10; i++)); do
    sleep 0.1
    sent=$(bench_metric "http://127.0.0.1:$port/metrics" '^nines_agent_ship_records_sent_total' 2>/dev/null) || sent=0
    [ "$sent" -ge "$LINES" ] && break
  done
  t1=$(date +%s.%N)
  local cpu hwm
  cpu=$(bench_cpu "$apid") hwm=$(bench_hwm "$apid")
  bench_stop "$apid"
  rm -rf "$dir"
  if [ "$sent" -lt "$LINES" ]; then
    bench_log "agent -> $name run $run: only $sent of $LINES lines delivered in ${DELIVERY_TIMEOUT}s (see $BENCH_TMP/agent-$name.log)"
    exit 1
  fi
  CPU[$name]+="$(bench_calc "$cpu / ($LINES / 1e6)") "
  RSS[$name]+="$(bench_calc "$hwm / 1048576") "
  RATE[$name]+="$(bench_calc "$LINES / ($t1 - $t0)") "
  bench_log "agent -> $name run $run: $LINES lines in $(bench_calc "$t1 - $t0") s, $cpu CPU-s, peak RSS $hwm B"
}

# The common program flags take --config FILE.
# (The help is captured first: grep -q closing the pipe early would fail it under pipefail.)
help=$("$AGENT" --help 2>&1 || true)
grep -q -- "--config FILE" <<<"$help" || { bench_log "nines-agent has no --config flag"; exit 1; }

sport=$(bench_free_port)
bench_start SINK sink "$BENCH_GEN" sink "127.0.0.1:$sport"
bench_wait_http "http://127.0.0.1:$sport/metrics"
if [ "$METRICS" = 1 ]; then
  for ((run = 1; run <= BENCH_RUNS; run++)); do
    run_agent null "http://127.0.0.1:$sport/loki/api/v1/push" "$run"
    run_agent metrics "http://127.0.0.1:$sport/loki/api/v1/push" "$run" 1
  done
  rm -f "$logfile"
  mib=$((BYTES >> 20))
  bench_emit logs "CPU per 1M lines, logs.metrics on -> null sink ($mib MiB)" CPU-s lower "" \
    "${CPU[metrics]}" "nines-agent, logs.metrics off" "${CPU[null]}" "same file and sink, same run"
  bench_emit logs "peak RSS, logs.metrics on -> null sink" MiB lower 32 "${RSS[metrics]}" \
    "nines-agent, logs.metrics off" "${RSS[null]}" "same file and sink, same run"
  exit 0
fi
for ((run = 1; run <= BENCH_RUNS; run++)); do
  run_agent null "http://127.0.0.1:$sport/loki/api/v1/push" "$run"

  gport=$(bench_free_port)
  bench_start GPID aggregator "$AGG" --listen-address "127.0.0.1:$gport" --data-dir "$BENCH_TMP/agg-$run"
  bench_wait_http "http://127.0.0.1:$gport/-/ready" 60
  run_agent aggregator "http://127.0.0.1:$gport/loki/api/v1/push" "$run"
  bench_stop "$GPID" 60
  rm -rf "$BENCH_TMP/agg-$run"
done
rm -f "$logfile"

# Idle: 1,000 small files, all delivered, then nothing is written for IDLE_SECONDS.
idledir="$BENCH_TMP/idle"
mkdir -p "$idledir"
now=$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)
for ((f = 0; f < IDLE_FILES; f++)); do
  printf '%s stdout F {"msg":"hello","file":%d}\n' "$now" "$f" \
    >"$idledir/pod$f-7d9f00_bench_app-$(printf '%064x' "$f").log"
done
declare -a IDLE_CPU=() IDLE_RSS=()
for ((run = 1; run <= BENCH_RUNS; run++)); do
  port=$(bench_free_port)
  dir="$BENCH_TMP/agent-idle-$run"
  write_config "$BENCH_TMP/agent-idle.yml" "$dir" "127.0.0.1:$port" "$idledir/*.log" \
    "http://127.0.0.1:$sport/loki/api/v1/push"
  bench_start apid agent-idle "$AGENT" --config "$BENCH_TMP/agent-idle.yml"
  sent=0
  for ((i = 0; i < 600; i++)); do
    sleep 0.1
    sent=$(bench_metric "http://127.0.0.1:$port/metrics" '^nines_agent_ship_records_sent_total' 2>/dev/null) || sent=0
    [ "$sent" -ge "$IDLE_FILES" ] && break
  done
  bench_wait_quiet "logs idle run $run"
  c0=$(bench_cpu "$apid")
  sleep "$IDLE_SECONDS"
  c1=$(bench_cpu "$apid") rss=$(bench_rss "$apid")
  files=$(bench_metric "http://127.0.0.1:$port/metrics" '^nines_agent_files_watched' 2>/dev/null) || files=?
  bench_stop "$apid"
  rm -rf "$dir"
  IDLE_CPU+=("$(bench_calc "100 * ($c1 - $c0) / $IDLE_SECONDS")")
  IDLE_RSS+=("$(bench_calc "$rss / 1048576")")
  bench_log "idle run $run: $sent lines delivered, $files files watched, $(bench_calc "$c1 - $c0") CPU-s in ${IDLE_SECONDS}s, RSS $rss B"
done

ref="Fluent Bit 5.1.1"
refnote="peer is a reference measured earlier on this machine, not in this run (Fluent Bit is not installable here)"
mib=$((BYTES >> 20))
bench_emit logs "CPU per 1M lines, -> null sink ($mib MiB)" CPU-s lower 0.8 "${CPU[null]}" "$ref -> http (reference)" "ref:10.75" "$refnote"
bench_emit logs "CPU per 1M lines, -> null sink ($mib MiB)" CPU-s lower 0.8 "${CPU[null]}" "$ref -> null output (reference)" "ref:4.0" "$refnote; Fluent Bit's null output neither compresses nor sends"
bench_emit logs "CPU per 1M lines, -> aggregator ($mib MiB)" CPU-s lower 0.8 "${CPU[aggregator]}" "$ref -> http (reference)" "ref:10.75" "$refnote"
bench_emit logs "peak RSS, -> null sink" MiB lower 32 "${RSS[null]}" "$ref -> http (reference)" "ref:85" "$refnote"
bench_emit logs "peak RSS, -> aggregator" MiB lower 32 "${RSS[aggregator]}" "$ref -> http (reference)" "ref:85" "$refnote"
bench_emit logs "lines/s, -> null sink" lines/s higher "" "${RATE[null]}" "$ref -> null output (reference)" "ref:167000" "$refnote"
bench_emit logs "lines/s, -> aggregator" lines/s higher "" "${RATE[aggregator]}" "" ""
bench_emit logs "idle CPU, $IDLE_FILES files" "% of a core" lower "" "${IDLE_CPU[*]}" "" ""
bench_emit logs "idle RSS, $IDLE_FILES files" MiB lower "" "${IDLE_RSS[*]}" "" ""
