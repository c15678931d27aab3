#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Aggregator ingest (issue 4): 100,000 active series scraped by one vmagent every 5 s
# (20,000 samples/s) and remote-written to each receiver in turn: nines-aggregator,
# VictoriaMetrics and Prometheus (remote-write receiver), each with a fresh data directory.
# Then the peak rate on one core: receiver pinned to CPU 0, the pusher to CPU 1. Last,
# bytes per sample in a persisted block: bench/ingest_block.c puts 3.5 h of the same kind
# of data (nines-benchgen's series and values, jittered 5 s scrapes) through the store and
# cuts a 2 h block (no peer: a run is too short for the others to cut blocks).
# Prints result JSON lines (contract in bench/run); progress goes to stderr.
source "$(dirname "$0")/lib.sh"

AGG=$BENCH_BUILD/aggregator/nines-aggregator
SERIES=${BENCH_SERIES:-100000}
TARGETS=10
if [ "$BENCH_QUICK" = 1 ]; then
  WARMUP=${BENCH_INGEST_WARMUP:-10} WINDOW=${BENCH_INGEST_WINDOW:-20}
  PEAK_WARM=5 PEAK_SECONDS=10 BLOCK_SERIES=10000
else
  WARMUP=${BENCH_INGEST_WARMUP:-15} WINDOW=${BENCH_INGEST_WINDOW:-45}
  PEAK_WARM=10 PEAK_SECONDS=20 BLOCK_SERIES=30000
fi
RECEIVERS=${BENCH_RECEIVERS:-"nines victoriametrics prometheus"}
PEAK_RECEIVERS=${BENCH_PEAK_RECEIVERS:-"nines victoriametrics"}

for bin in "$AGG" "$BENCH_GEN" /usr/bin/vmagent /usr/bin/victoria-metrics /usr/bin/prometheus; do
  [ -x "$bin" ] || { bench_log "missing $bin"; exit 1; }
done

# start_receiver KIND PORT DIR [taskset cpu]: starts it, sets RPID, waits until ready.
start_receiver() {
  local kind=$1 port=$2 dir=$3 cpu=${4:-}
  local pin=()
  [ -n "$cpu" ] && pin=(taskset -c "$cpu")
  case $kind in
  nines)
    bench_start RPID "$kind" "${pin[@]}" "$AGG" --listen-address "127.0.0.1:$port" --data-dir "$dir"
    bench_wait_http "http://127.0.0.1:$port/-/ready" 60
    ;;
  victoriametrics)
    bench_start RPID "$kind" "${pin[@]}" /usr/bin/victoria-metrics -httpListenAddr="127.0.0.1:$port" \
      -storageDataPath="$dir" -retentionPeriod=1y
    bench_wait_http "http://127.0.0.1:$port/health" 60
    ;;
  prometheus)
    printf 'global: {scrape_interval: 1h}\n' >"$BENCH_TMP/prom-empty.yml"
    bench_start RPID "$kind" "${pin[@]}" /usr/bin/prometheus --config.file="$BENCH_TMP/prom-empty.yml" \
      --web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$dir" \
      --web.enable-remote-write-receiver
    bench_wait_http "http://127.0.0.1:$port/-/ready" 60
    ;;
  esac
}

# samples KIND PORT: samples the receiver says it has ingested so far.
samples() {
  local url="http://127.0.0.1:$2/metrics"
  case $1 in
  nines) bench_metric "$url" '^nines_ingest_samples_total$' ;;
  victoriametrics) bench_metric "$url" '^vm_rows_inserted_total\{type="promremotewrite"\}$' ;;
  prometheus) bench_metric "$url" '^prometheus_tsdb_head_samples_appended_total' ;;
  esac
}

tport=$(bench_free_port)
bench_start TPID targets "$BENCH_GEN" targets "127.0.0.1:$tport" "$SERIES" "$TARGETS"
bench_wait_http "http://127.0.0.1:$tport/metrics/0"
{
  echo "scrape_configs:"
  for ((k = 0; k < TARGETS; k++)); do
    printf '  - job_name: bench%d\n    scrape_interval: 5s\n    scrape_timeout: 5s\n' "$k"
    printf '    metrics_path: /metrics/%d\n' "$k"
    printf "    static_configs: [{targets: ['127.0.0.1:%s']}]\n" "$tport"
  done
} >"$BENCH_TMP/vmagent.yml"

declare -A CPU RSS DISK HWM PEAK
for ((run = 1; run <= BENCH_RUNS; run++)); do
  for kind in $RECEIVERS; do
    port=$(bench_free_port)
    aport=$(bench_free_port)
    dir="$BENCH_TMP/$kind-data-$run"
    bench_wait_quiet "ingest $kind run $run"
    start_receiver "$kind" "$port" "$dir"
    sleep 2
    rss0=$(bench_rss "$RPID")
    bench_start APID vmagent /usr/bin/vmagent -httpListenAddr="127.0.0.1:$aport" \
      -promscrape.config="$BENCH_TMP/vmagent.yml" -remoteWrite.url="http://127.0.0.1:$port/api/v1/write" \
      -remoteWrite.tmpDataPath="$BENCH_TMP/vmagent-$kind-$run"
    sleep "$WARMUP"
    c0=$(bench_cpu "$RPID") s0=$(samples "$kind" "$port") d0=$(bench_du "$dir")
    sleep "$WINDOW"
    c1=$(bench_cpu "$RPID") s1=$(samples "$kind" "$port") d1=$(bench_du "$dir")
    rss1=$(bench_rss "$RPID") hwm=$(bench_hwm "$RPID")
    bench_stop "$APID"
    bench_stop "$RPID" 60
    if [ "$s1" -le "$s0" ]; then
      bench_log "$kind run $run: no samples arrived (see $BENCH_TMP/$kind.log)"
      exit 1
    fi
    CPU[$kind]+="$(bench_calc "($c1 - $c0) / (($s1 - $s0) / 1e6)") "
    RSS[$kind]+="$(bench_calc "max(0, $rss1 - $rss0) / $SERIES") "
    HWM[$kind]+="$(bench_calc "$hwm / 1048576") "
    DISK[$kind]+="$(bench_calc "max(0, $d1 - $d0) / ($s1 - $s0)") "
    bench_log "ingest run $run $kind: $(bench_calc "($s1 - $s0) / $WINDOW") samples/s," \
      "$(bench_calc "$c1 - $c0") CPU-s, RSS $rss0 -> $rss1 B, disk $d0 -> $d1 B"
    rm -rf "$dir" "$BENCH_TMP/vmagent-$kind-$run"
  done

  for kind in $PEAK_RECEIVERS; do
    port=$(bench_free_port)
    dir="$BENCH_TMP/$kind-peak-$run"
    bench_wait_quiet "peak $kind run $run"
    start_receiver "$kind" "$port" "$dir" 0
    # The first pass creates every series (the costly part of a new series); the second,
    # measured, pass is steady-state appends.
    taskset -c 1 "$BENCH_GEN" rw "127.0.0.1:$port" /api/v1/write "$SERIES" "$PEAK_WARM" 16 5000 \
      >/dev/null
    c0=$(bench_cpu "$RPID")
    out=$(taskset -c 1 "$BENCH_GEN" rw "127.0.0.1:$port" /api/v1/write "$SERIES" "$PEAK_SECONDS" 16 5000)
    c1=$(bench_cpu "$RPID")
    bench_stop "$RPID" 60
    rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["samples_per_second"])' "$out")
    PEAK[$kind]+="$rate "
    bench_log "peak run $run $kind: $out; receiver CPU $(bench_calc "$c1 - $c0") s"
    rm -rf "$dir"
  done
done

note_disk="growth of the data directory over the window / samples in it; nines and Prometheus hold a run this short in their WAL (no block is cut before 2 h), VictoriaMetrics writes (and merges) its final parts"
for peer in victoriametrics prometheus; do
  case " $RECEIVERS " in *" $peer "*) ;; *) continue ;; esac
  bench_emit ingest "CPU per 1M samples" CPU-s lower 1.2 "${CPU[nines]}" "$peer" "${CPU[$peer]}"
  bench_emit ingest "RSS per active series" B lower 1000 "${RSS[nines]}" "$peer" "${RSS[$peer]}"
  bench_emit ingest "peak RSS" MiB lower "" "${HWM[nines]}" "$peer" "${HWM[$peer]}"
  bench_emit ingest "disk per sample (window)" B lower "" "${DISK[nines]}" "$peer" "${DISK[$peer]}" "$note_disk"
done
for peer in $PEAK_RECEIVERS; do
  [ "$peer" = nines ] && continue
  bench_emit ingest "peak ingest, one core" samples/s higher "" "${PEAK[nines]}" "$peer" "${PEAK[$peer]}"
done

# Block bytes per sample: the data is generated deterministically, so one run is enough.
libs=$(find "$BENCH_BUILD" -name 'libnn_*.a' | sort)
if [ -n "$libs" ]; then
  # shellcheck disable=SC2086
  cc -O2 -DNDEBUG -D_GNU_SOURCE -std=gnu11 -Wall -Wextra -I"$NN_ROOT" -I"$BENCH_BUILD" \
    -I"$BENCH_BUILD/proto" "$NN_ROOT/bench/ingest_block.c" -o "$BENCH_TMP/ingest_block" \
    -Wl,--start-group $libs -Wl,--end-group -lprotobuf-c -luv -lh2o -lcurl -lzstd -llz4 \
    -lsnappy -ljansson -lyaml -lpcre2-8 -lxxhash -lssl -lcrypto -lm -lpthread
  bench_wait_quiet "ingest block"
  out=$("$BENCH_TMP/ingest_block" "$BLOCK_SERIES" "$BENCH_TMP/block-data")
  rm -rf "$BENCH_TMP/block-data"
  bench_log "ingest block: $out"
  bps=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["bytes_per_sample"])' "$out")
  bench_emit ingest "disk per sample (block)" B lower 1.5 "$bps" "" "" \
    "one 2 h block of $BLOCK_SERIES series: jittered 5 s scrapes, 2/3 counters, 1/3 random two-decimal gauges (bench/ingest_block.c)"
else
  bench_log "ingest block: no static libraries in $BENCH_BUILD; skipped"
fi
