#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Agent scrape -> remote write (issue 5): 10 targets x 10,000 series scraped every 5 s and
# remote-written, for 60 s (20 s with BENCH_QUICK=1). nines-agent runs twice per round,
# snappy to a local VictoriaMetrics (like for like with vmagent) and zstd to a nines
# aggregator (wire bytes), and vmagent 1.79 runs in the same round, snappy to the same
# VictoriaMetrics. Figures: sender CPU-seconds per 1M samples sent, peak RSS, and request
# body bytes per sample. BENCH_SCRAPE_SECONDS overrides the run length. Prints result JSON
# lines (contract in bench/run).
source "$(dirname "$0")/lib.sh"

AGG=$BENCH_BUILD/aggregator/nines-aggregator
AGENT=$BENCH_BUILD/agent/nines-agent
SERIES=100000
TARGETS=10
SECONDS_RUN=60
[ "$BENCH_QUICK" = 1 ] && SECONDS_RUN=20
SECONDS_RUN=${BENCH_SCRAPE_SECONDS:-$SECONDS_RUN}

for bin in "$AGG" "$AGENT" "$BENCH_GEN" /usr/bin/vmagent /usr/bin/victoria-metrics; do
  [ -x "$bin" ] || { bench_log "missing $bin"; exit 1; }
done

tport=$(bench_free_port)
vport=$(bench_free_port)
nport=$(bench_free_port)
bench_start TPID targets "$BENCH_GEN" targets "127.0.0.1:$tport" "$SERIES" "$TARGETS"
bench_start VPID victoriametrics /usr/bin/victoria-metrics -httpListenAddr="127.0.0.1:$vport" \
  -storageDataPath="$BENCH_TMP/vm-data" -retentionPeriod=1y
bench_start NPID aggregator "$AGG" --listen-address "127.0.0.1:$nport" --data-dir "$BENCH_TMP/agg-data"
bench_wait_http "http://127.0.0.1:$tport/metrics/0"
bench_wait_http "http://127.0.0.1:$vport/health" 60
bench_wait_http "http://127.0.0.1:$nport/-/ready" 60

# The same ten jobs for both scrapers (benchgen serves target k at /metrics/k).
jobs_yaml() {
  local k
  for ((k = 0; k < TARGETS; k++)); do
    printf '    - job_name: bench%d\n      metrics_path: /metrics/%d\n' "$k" "$k"
    printf "      static_configs: [{targets: ['127.0.0.1:%s']}]\n" "$tport"
  done
}
{
  printf 'global: {scrape_interval: 5s, scrape_timeout: 5s}\nscrape_configs:\n'
  jobs_yaml
} >"$BENCH_TMP/vmagent.yml"

# agent_config FILE PORT DIR URL CODEC
agent_config() {
  cat >"$1" <<YML
listen_address: 127.0.0.1:$2
data_dir: $3
logs: {enabled: false}
scrape:
  scrape_interval: 5s
  scrape_timeout: 5s
  scrape_configs:
$(jobs_yaml)
remote_write:
  destinations:
    - {name: bench, url: '$4', codec: $5}
YML
}

# measure KIND RUN: runs one sender for SECONDS_RUN and appends "cpu_per_1m hwm_mib
# bytes_per_sample samples" to $BENCH_TMP/KIND.runs. CPU and samples are counted over the
# sender's whole life, so a scrape half done at the end weighs on both sides alike.
measure() {
  local kind=$1 run=$2 mport dir samples bytes cpu hwm url
  mport=$(bench_free_port)
  dir=$BENCH_TMP/$kind-$run
  mkdir -p "$dir"
  bench_wait_quiet "scrape $kind run $run"
  case $kind in
  nines-snappy | nines-zstd)
    if [ "$kind" = nines-snappy ]; then
      agent_config "$dir/agent.yml" "$mport" "$dir" "http://127.0.0.1:$vport/api/v1/write" snappy
    else
      agent_config "$dir/agent.yml" "$mport" "$dir" "http://127.0.0.1:$nport/api/v1/write" zstd
    fi
    bench_start SPID "$kind-$run" "$AGENT" --config "$dir/agent.yml"
    ;;
  vmagent)
    bench_start SPID "$kind-$run" /usr/bin/vmagent -httpListenAddr="127.0.0.1:$mport" \
      -promscrape.config="$BENCH_TMP/vmagent.yml" -remoteWrite.url="http://127.0.0.1:$vport/api/v1/write" \
      -remoteWrite.tmpDataPath="$dir/queue"
    ;;
  esac
  url=http://127.0.0.1:$mport/metrics
  bench_wait_http "$url" 30
  sleep "$SECONDS_RUN"
  cpu=$(bench_cpu "$SPID") hwm=$(bench_hwm "$SPID")
  case $kind in
  vmagent)
    samples=$(bench_metric "$url" '^vmagent_remotewrite_block_size_rows_sum$')
    bytes=$(bench_metric "$url" '^vmagent_remotewrite_bytes_sent_total')
    ;;
  *)
    samples=$(bench_metric "$url" '^nines_agent_ship_records_sent_total\{.*source="metrics"')
    bytes=$(bench_metric "$url" '^nines_agent_ship_bytes_sent_total\{.*source="metrics"')
    ;;
  esac
  bench_stop "$SPID"
  if [ "${samples:-0}" -le 0 ]; then
    bench_log "$kind run $run: nothing was sent (see $BENCH_TMP/$kind-$run.log)"
    exit 1
  fi
  bench_log "scrape $kind run $run: $samples samples in ${SECONDS_RUN}s" \
    "($(bench_calc "$samples / ($SECONDS_RUN * $SERIES / 5.0)") of the scheduled load)," \
    "$cpu CPU-s, peak RSS $(bench_calc "$hwm / 1048576") MiB, $bytes wire bytes"
  printf '%s %s %s %s\n' "$(bench_calc "$cpu / ($samples / 1e6)")" "$(bench_calc "$hwm / 1048576")" \
    "$(bench_calc "$bytes / $samples")" "$samples" >>"$BENCH_TMP/$kind.runs"
  rm -rf "$dir"
}

for ((run = 1; run <= BENCH_RUNS; run++)); do
  for kind in nines-snappy vmagent nines-zstd; do
    measure "$kind" "$run"
  done
done

# col KIND N: the Nth figure of every run of KIND, space-separated.
col() { awk -v n="$2" '{ printf "%s ", $n }' "$BENCH_TMP/$1.runs"; }

bench_emit scrape "CPU per 1M samples, snappy to VictoriaMetrics" CPU-s lower 1.0 \
  "$(col nines-snappy 1)" vmagent "$(col vmagent 1)"
bench_emit scrape "CPU per 1M samples, zstd to nines" CPU-s lower 1.0 "$(col nines-zstd 1)" "" ""
bench_emit scrape "peak RSS, snappy to VictoriaMetrics" MiB lower 32 \
  "$(col nines-snappy 2)" vmagent "$(col vmagent 2)"
bench_emit scrape "peak RSS, zstd to nines" MiB lower 32 "$(col nines-zstd 2)" "" ""
bench_emit scrape "wire bytes per sample, zstd to nines" B lower 10 \
  "$(col nines-zstd 3)" "vmagent (snappy)" "$(col vmagent 3)"
bench_emit scrape "wire bytes per sample, snappy" B lower "" \
  "$(col nines-snappy 3)" vmagent "$(col vmagent 3)"
# Prometheus agent mode is not run here; the issue's figures, measured on this machine.
bench_emit scrape "CPU per 1M samples vs Prometheus agent" CPU-s lower 1.0 \
  "$(col nines-snappy 1)" "Prometheus agent" "ref:4.2"
bench_emit scrape "peak RSS vs Prometheus agent" MiB lower 32 \
  "$(col nines-snappy 2)" "Prometheus agent" "ref:384"
