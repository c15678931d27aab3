# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the benchmark scripts (sourced, not run). They start processes on
# 127.0.0.1 only, remember every PID they start and stop exactly those on exit, and read
# CPU time and memory of a process from /proc. Results leave a script as JSON lines on
# stdout (see bench_emit); everything human-readable goes to stderr.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NN_ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_BUILD=${BENCH_BUILD:-$NN_ROOT/build-bench}
BENCH_QUICK=${BENCH_QUICK:-0}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_GEN=${BENCH_GEN:-$BENCH_BUILD/bench/gen/nines-benchgen}
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nines-bench.XXXXXX")
CLK_TCK=$(getconf CLK_TCK)
declare -a BENCH_PIDS=()

bench_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then
    bench_log "kept $BENCH_TMP"
  else
    rm -rf "$BENCH_TMP"
  fi
}
trap bench_cleanup EXIT

# bench_free_port: prints a TCP port that is free on 127.0.0.1 right now.
bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_start VAR NAME CMD...: starts CMD in the background (output in $BENCH_TMP/NAME.log)
# and stores its PID in VAR.
bench_start() {
  local var=$1 name=$2
  shift 2
  "$@" >"$BENCH_TMP/$name.log" 2>&1 &
  local pid=$!
  BENCH_PIDS+=("$pid")
  printf -v "$var" '%s' "$pid"
}

# bench_stop PID [TIMEOUT_S]: SIGTERM, then SIGKILL after TIMEOUT_S (default 30); waits.
bench_stop() {
  local pid=$1 t=${2:-30} i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < t * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# bench_wait_http URL [TIMEOUT_S]: waits until URL answers 2xx (default 30 s).
bench_wait_http() {
  local url=$1 t=${2:-30} i
  for ((i = 0; i < t * 10; i++)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  bench_log "timed out waiting for $url"
  return 1
}

# bench_cpu PID: CPU seconds (user + system) the process has used so far.
bench_cpu() {
  awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

# bench_rss PID / bench_hwm PID: resident / peak resident memory in bytes.
bench_rss() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"; }
bench_hwm() { awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$1/status"; }

# bench_metric URL REGEX: sum of the samples in URL's exposition whose series (name and
# labels) matches the extended regex REGEX; 0 when none does.
bench_metric() {
  curl -fsS --max-time 10 "$1" | awk -v re="$2" '
    /^#/ { next }
    { series = $0; sub(/ [^ ]+( [0-9]+)?$/, "", series)
      if (series ~ re) { split(substr($0, length(series) + 2), f, " "); s += f[1] } }
    END { printf "%.0f\n", s }'
}

# bench_calc EXPR: evaluates a Python arithmetic expression (floats).
bench_calc() { python3 -c "print(round($1, 6))"; }

# bench_emit BENCH METRIC UNIT BETTER TARGET RUNS PEER PEER_RUNS [NOTE]
#   One result as a JSON line. RUNS and PEER_RUNS are space-separated per-run values (PEER
#   may be "" when there is none); the value reported is the median. BETTER is "lower" or
#   "higher"; TARGET is a number or "" (no target). A PEER_RUNS of "ref:X" is a reference
#   figure measured earlier, not in this run, and is labelled so.
bench_emit() {
  python3 - "$@" <<'PY'
import json, statistics, sys
bench, metric, unit, better, target, runs, peer, peer_runs = sys.argv[1:9]
note = sys.argv[9] if len(sys.argv) > 9 else ""
vals = [float(x) for x in runs.split()]
rec = {"bench": bench, "metric": metric, "unit": unit, "better": better,
       "value": statistics.median(vals) if vals else None, "runs": vals}
if target:
    rec["target"] = float(target)
if peer:
    rec["peer"] = peer
    if peer_runs.startswith("ref:"):
        rec["peer_value"] = float(peer_runs[4:])
        rec["peer_runs"] = []
        rec["peer_reference"] = True
    else:
        pv = [float(x) for x in peer_runs.split()]
        rec["peer_value"] = statistics.median(pv) if pv else None
        rec["peer_runs"] = pv
if note:
    rec["note"] = note
print(json.dumps(rec), flush=True)
PY
}

# bench_du DIR: bytes under DIR; files vanishing mid-walk (a store merging) are not an error.
bench_du() { { du -sb "$1" 2>/dev/null || true; } | cut -f1; }

# bench_busy: percent of the whole machine (all CPUs) busy over the next second.
bench_busy() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
  python3 -c 'import sys; a=sys.argv[1].split(); b=sys.argv[2].split()
busy=float(b[0])-float(a[0]); idle=float(b[1])-float(a[1])
print(round(100*busy/max(1.0, busy+idle)))' "$a" "$b"
}

# bench_wait_quiet LABEL: before a measured run, waits (at most BENCH_QUIET_WAIT s, default
# 180) for other processes to leave the machine mostly idle (< BENCH_QUIET_MAX %, default
# 15), so that one benchmark does not measure another program's build. It never fails: the
# busy figure it last saw is appended to $BENCH_CONTENTION_LOG so that the table can say
# when figures were taken on a busy machine.
bench_wait_quiet() {
  local label=$1 max=${BENCH_QUIET_MAX:-15} wait=${BENCH_QUIET_WAIT:-180} busy said=-30
  local start=$SECONDS
  while :; do
    busy=$(bench_busy)
    [ "$busy" -lt "$max" ] && break
    if [ $((SECONDS - start)) -ge "$wait" ]; then
      bench_log "$label: machine still ${busy}% busy after ${wait}s; measuring anyway"
      break
    fi
    if [ $((SECONDS - said)) -ge 30 ]; then
      bench_log "$label: machine ${busy}% busy with other processes; waiting"
      said=$SECONDS
    fi
  done
  if [ -n "${BENCH_CONTENTION_LOG:-}" ]; then
    printf '%s %s\n' "$label" "$busy" >>"$BENCH_CONTENTION_LOG"
  fi
}
