#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Durability under crashes: remote-write and Loki push load (tests/e2e/rwload.py, which
# keeps a ledger of every acknowledged request) while the aggregator is killed with
# SIGKILL at random moments, five times. After each restart everything acknowledged
# before the kill must be served again with exact values, timestamps and lines: a 2xx
# is only sent once the WAL is fsynced.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
PY=/usr/bin/python3 # Debian's, which has python3-snappy
LOAD=$NN_SOURCE_DIR/tests/e2e/rwload.py
CHECK=$NN_SOURCE_DIR/tests/e2e/ledger_check.py
KILLS=${NN_CRASH_KILLS:-5}

port=$(nn_free_port)
base=http://127.0.0.1:$port
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/data
storage:
  wal_flush_interval: 10ms
YML

start_agg() {
  nn_start "agg$1" "$AGG" --config "$NN_TMP/agg.yml"
  nn_wait_http "$base/-/ready" 60
}

# ms_sleep MIN MAX: sleeps a random time between MIN and MAX milliseconds.
ms_sleep() { sleep "$(awk -v a="$1" -v b="$2" -v r="$RANDOM" 'BEGIN{printf "%.3f", (a + (b-a)*r/32767)/1000}')"; }

start_agg 0
for ((i = 1; i <= KILLS; i++)); do
  "$PY" "$LOAD" rw "$base/api/v1/write" "$NN_TMP/rw.ledger" --threads 4 --series 20 \
    --seconds 20 --run crash >"$NN_TMP/rwload.$i" 2>&1 &
  rwpid=$!
  "$PY" "$LOAD" loki "$base/loki/api/v1/push" "$NN_TMP/loki.ledger" --threads 2 --series 5 \
    --seconds 20 --run crash >"$NN_TMP/lokiload.$i" 2>&1 &
  lkpid=$!
  # Kill at a random moment once both loads are under way.
  for ((w = 0; w < 100; w++)); do
    [ -s "$NN_TMP/rw.ledger" ] && [ -s "$NN_TMP/loki.ledger" ] &&
      [ "$(wc -l <"$NN_TMP/rw.ledger")" -gt "${rwlines:-0}" ] &&
      [ "$(wc -l <"$NN_TMP/loki.ledger")" -gt "${lklines:-0}" ] && break
    sleep 0.1
  done
  ms_sleep 100 2000
  pidvar=PID_agg$((i - 1))
  kill -KILL "${!pidvar}"
  wait "${!pidvar}" 2>/dev/null || true
  # The loaders stop at their first connection error; bounded by --seconds anyway.
  wait "$rwpid" || true
  wait "$lkpid" || true
  nn_check "kill $i: remote-write load got acknowledgements ($(cat "$NN_TMP/rwload.$i"))" \
    grep -q '"acked": [1-9]' "$NN_TMP/rwload.$i"
  nn_check "kill $i: Loki push load got acknowledgements ($(cat "$NN_TMP/lokiload.$i"))" \
    grep -q '"acked": [1-9]' "$NN_TMP/lokiload.$i"
  nn_check "kill $i: no request was refused" \
    bash -c "grep -q '\"refused\": {}' '$NN_TMP/rwload.$i' && grep -q '\"refused\": {}' '$NN_TMP/lokiload.$i'"
  rwlines=$(wc -l <"$NN_TMP/rw.ledger")
  lklines=$(wc -l <"$NN_TMP/loki.ledger")
  start_agg "$i"
  nn_check "kill $i: every acknowledged sample is back with its exact value" \
    "$PY" "$CHECK" rw "$base" "$NN_TMP/rw.ledger"
  nn_check "kill $i: every acknowledged log entry is back with its exact line" \
    "$PY" "$CHECK" loki "$base" "$NN_TMP/loki.ledger"
done

# A clean shutdown after all of that keeps everything too.
pidvar=PID_agg$KILLS
kill -TERM "${!pidvar}"
wait "${!pidvar}" && rc=0 || rc=$?
nn_check "aggregator exits 0 on SIGTERM after the crashes" [ "$rc" -eq 0 ]
start_agg final
nn_check "after a clean restart every acknowledged sample is there" \
  "$PY" "$CHECK" rw "$base" "$NN_TMP/rw.ledger"
nn_check "after a clean restart every acknowledged log entry is there" \
  "$PY" "$CHECK" loki "$base" "$NN_TMP/loki.ledger"
# (WAL damage is not asserted: a SIGKILL may cut a write that was never acknowledged.)
nn_finish
