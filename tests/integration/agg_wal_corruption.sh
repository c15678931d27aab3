#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# WAL damage at start-up: a segment cut in the middle of its last record (a torn tail),
# and separately a flipped byte in the middle of a segment. The aggregator must start,
# keep every sample in the records before the damage (decoded independently by
# tests/e2e/waltool.py) and in later segments, drop the damaged part, say so in its log
# and on /metrics, and go on serving reads and writes. A second restart sees a clean WAL.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
PY=/usr/bin/python3 # Debian's, which has python3-snappy
LOAD=$NN_SOURCE_DIR/tests/e2e/rwload.py
CHECK=$NN_SOURCE_DIR/tests/e2e/ledger_check.py
WALTOOL=$NN_SOURCE_DIR/tests/e2e/waltool.py

port=$(nn_free_port)
base=http://127.0.0.1:$port
n=0

# start NAME DIR: starts the aggregator on DIR and waits until it is ready.
start() {
  nn_start "$1" "$AGG" --listen-address "127.0.0.1:$port" --data-dir "$2"
  nn_wait_http "$base/-/ready" 60
}

# load DIR RUN: starts the aggregator, writes for a while, and kills it (SIGKILL, so that
# nothing but the WAL is on disk, exactly as the load left it).
load() {
  n=$((n + 1))
  start "load$n" "$1"
  "$PY" "$LOAD" rw "$base/api/v1/write" "$NN_TMP/ledger.$2" --threads 2 --series 10 \
    --seconds 1.5 --run "$2" >"$NN_TMP/load.$2" 2>&1
  local pv=PID_load$n
  kill -KILL "${!pv}"
  wait "${!pv}" 2>/dev/null || true
}

# covers LEDGER FILE...: every line of LEDGER is in one of the FILEs (waltool decoded all).
covers() {
  local l=$1
  shift
  [ -s "$l" ] && [ -z "$(sort "$@" | comm -23 <(sort "$l") -)" ]
}

metric() { curl -fsS "$base/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# damaged CASE: the checks after restarting on a damaged WAL. $NN_TMP/$CASE.{kept,dropped}
# and $NN_TMP/$CASE.json come from waltool.py.
damaged() {
  local c=$1 cut
  cut=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cut_bytes"])' "$NN_TMP/$c.json")
  start "$c" "$NN_TMP/$c"
  nn_check "$c: aggregator starts and is healthy" curl -fsS -o /dev/null "$base/-/healthy"
  nn_check "$c: the damage is logged with path, offset and dropped bytes" \
    grep -q "damaged WAL record.*path=$NN_TMP/$c/wal/[0-9]* offset=[0-9]* dropped_bytes=$cut" \
    "$NN_TMP/$c.log"
  nn_check "$c: nines_tsdb_wal_corruptions_total is 1" [ "$(metric nines_tsdb_wal_corruptions_total)" = 1 ]
  nn_check "$c: nines_tsdb_wal_truncated_bytes_total is the $cut damaged bytes" \
    [ "$(metric nines_tsdb_wal_truncated_bytes_total)" = "$cut" ]
  nn_check "$c: every sample before the damage is kept ($(wc -l <"$NN_TMP/$c.kept"))" \
    "$PY" "$CHECK" rw "$base" "$NN_TMP/$c.kept"
  nn_check "$c: the samples of the damaged records are gone ($(wc -l <"$NN_TMP/$c.dropped"))" \
    "$PY" "$CHECK" rw-absent "$base" "$NN_TMP/$c.dropped"
  "$PY" "$LOAD" rw "$base/api/v1/write" "$NN_TMP/$c.after" --threads 1 --series 5 --seconds 0.5 \
    --run "after" >"$NN_TMP/$c.afterload" 2>&1
  nn_check "$c: new writes are acknowledged after the repair" \
    grep -q '"acked": [1-9].*"refused": {}' "$NN_TMP/$c.afterload"
  nn_check "$c: and can be read back" "$PY" "$CHECK" rw "$base" "$NN_TMP/$c.after"
  local pv=PID_$c
  kill -TERM "${!pv}"
  wait "${!pv}" || true
  start "$c.again" "$NN_TMP/$c"
  nn_check "$c: the next start finds a clean WAL" \
    [ "$(metric nines_tsdb_wal_corruptions_total)" = 0 ]
  nn_check "$c: and still has the kept samples" "$PY" "$CHECK" rw "$base" "$NN_TMP/$c.kept"
  pv=PID_${c}_again
  kill -TERM "${!pv}"
  wait "${!pv}" || true
}

# Torn tail: the last record of the last segment is cut in half.
load "$NN_TMP/tail" tail1
"$PY" "$WALTOOL" truncate-tail "$NN_TMP/tail/wal" "$NN_TMP/tail.kept" "$NN_TMP/tail.dropped" \
  >"$NN_TMP/tail.out"
tail -1 "$NN_TMP/tail.out" >"$NN_TMP/tail.json"
nn_check "tail: waltool cut the last record" grep -q cut_bytes "$NN_TMP/tail.json"
nn_check "tail: waltool's decoding has every acknowledged sample" \
  covers "$NN_TMP/ledger.tail1" "$NN_TMP/tail.kept" "$NN_TMP/tail.dropped"
damaged tail

# A flipped byte in the middle of the first of two segments: the rest of that segment
# goes, the second segment stays.
load "$NN_TMP/flip" flip1
load "$NN_TMP/flip" flip2
"$PY" "$WALTOOL" flip-middle "$NN_TMP/flip/wal" "$NN_TMP/flip.kept" "$NN_TMP/flip.dropped" \
  >"$NN_TMP/flip.out"
tail -1 "$NN_TMP/flip.out" >"$NN_TMP/flip.json"
nn_check "flip: waltool damaged a record in the middle of the first segment" \
  grep -q '"segment": "00000000"' "$NN_TMP/flip.json"
nn_check "flip: samples of the second segment are among those to keep" \
  grep -qxF "$(tail -1 "$NN_TMP/ledger.flip2")" "$NN_TMP/flip.kept"
cat "$NN_TMP/ledger.flip1" "$NN_TMP/ledger.flip2" >"$NN_TMP/ledger.flip"
nn_check "flip: waltool's decoding has every acknowledged sample" \
  covers "$NN_TMP/ledger.flip" "$NN_TMP/flip.kept" "$NN_TMP/flip.dropped"
damaged flip
nn_finish
