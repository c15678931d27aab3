#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Memory per series with a full head, for the capacity model in docs/scaling.md. bench/ingest.sh
# measures RSS per series over 45 s, when head chunks are nearly empty; a running aggregator
# holds up to 2 h of samples per series in memory (480 at a 15 s scrape). Here
# `nines-benchgen rw` (16 connections) creates SERIES series (20,000; quick 10,000) with a
# one-second push, then pushes in one-second steps until every series has at least PER (480)
# samples. RSS is read once the receiver is idle: empty (r0), after the first push (r1), at
# the end (r2). Figures: RSS per series with ~PER samples = (r2 - r0) / SERIES, and (nines
# only) bytes per head sample = (r2 - r1) / samples pushed after the first second.
# Timestamps are wall-clock milliseconds (spaced by the push rate, not a scrape interval) and
# counters grow by random steps, which compress worse than scraped data: an upper bound.
# Peer, in the same run: Prometheus 2.42 with its remote-write receiver, the same pushes (its
# RSS includes Go's garbage-collector headroom and its memory-mapped head chunks).
source "$(dirname "$0")/lib.sh"

AGG=$BENCH_BUILD/aggregator/nines-aggregator
PROM=/usr/bin/prometheus
if [ "$BENCH_QUICK" = 1 ]; then SERIES=10000; else SERIES=20000; fi
SERIES=${BENCH_HEADMEM_SERIES:-$SERIES}
PER=480
for b in "$AGG" "$BENCH_GEN"; do
  [ -x "$b" ] || { bench_log "headmem: missing $b"; exit 1; }
done

# settle_rss PID: RSS once it has stopped changing by more than 1 % over a second (at most 20 s).
settle_rss() {
  local a b i
  a=$(bench_rss "$1")
  for ((i = 0; i < 20; i++)); do
    sleep 1
    b=$(bench_rss "$1")
    python3 -c "import sys; sys.exit(0 if abs($b - $a) <= 0.01 * $a else 1)" && break
    a=$b
  done
  echo "$b"
}

# measure KIND: one run against a fresh receiver; appends to PER_SERIES, PER_SAMPLE and SPS
# (samples per series reached) of KIND.
declare -A PER_SERIES PER_SAMPLE SPS
measure() {
  local kind=$1 port rpid path metric r0 r1 r2 s1 s2 i out
  port=$(bench_free_port)
  if [ "$kind" = nines ]; then
    bench_start rpid "agg-$run" "$AGG" --listen-address "127.0.0.1:$port" \
      --data-dir "$BENCH_TMP/agg-$run"
    path=/api/v1/write metric='^nines_ingest_samples_total'
  else
    bench_start rpid "prom-$run" "$PROM" --config.file=/dev/null \
      --storage.tsdb.path="$BENCH_TMP/prom-$run" --web.listen-address="127.0.0.1:$port" \
      --web.enable-remote-write-receiver
    path=/api/v1/write metric='^prometheus_tsdb_head_samples_appended_total'
  fi
  bench_wait_http "http://127.0.0.1:$port/-/ready" 60
  r0=$(settle_rss "$rpid")
  "$BENCH_GEN" rw "127.0.0.1:$port" "$path" "$SERIES" 1 16 5000 >/dev/null
  r1=$(settle_rss "$rpid")
  s1=$(bench_metric "http://127.0.0.1:$port/metrics" "$metric")
  for ((i = 0; i < 600; i++)); do # 1 s pushes, at most 10 minutes
    s2=$(bench_metric "http://127.0.0.1:$port/metrics" "$metric")
    [ "$s2" -ge $((SERIES * PER)) ] && break
    out=$("$BENCH_GEN" rw "127.0.0.1:$port" "$path" "$SERIES" 1 16 5000)
  done
  r2=$(settle_rss "$rpid")
  s2=$(bench_metric "http://127.0.0.1:$port/metrics" "$metric")
  bench_stop "$rpid" 60
  rm -rf "$BENCH_TMP/agg-$run" "$BENCH_TMP/prom-$run"
  bench_log "headmem $kind run $run: rss empty $r0, after creating $SERIES series $r1 ($s1 samples), after $s2 samples $r2; last push $out"
  PER_SERIES[$kind]+="$(bench_calc "($r2 - $r0) / $SERIES") "
  PER_SAMPLE[$kind]+="$(bench_calc "($r2 - $r1) / ($s2 - $s1)") "
  SPS[$kind]+="$(bench_calc "$s2 / $SERIES") "
}

peer=""
[ -x "$PROM" ] && peer=prometheus
for ((run = 1; run <= BENCH_RUNS; run++)); do
  bench_wait_quiet "headmem run $run"
  measure nines
  [ -z "$peer" ] || measure prometheus
done
sps=$(python3 -c 'import statistics, sys; print(round(statistics.median(float(x) for x in sys.argv[1].split())))' "${SPS[nines]}")
bench_emit headmem "RSS per series, ~$PER samples in head" B lower "" "${PER_SERIES[nines]}" \
  "$peer" "${PER_SERIES[prometheus]:-}" "$SERIES series, $sps samples per series (nines; runs: ${SPS[nines]}; prometheus: ${SPS[prometheus]:-})"
bench_emit headmem "RSS per head sample" B lower "" "${PER_SAMPLE[nines]}" "" "" \
  "RSS growth after the first second / samples appended since"
