#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Back-pressure (AGENTS.md §5 complaints 4 and 6): the receiver answers 429 for
# NN_BACKPRESSURE_SECONDS (full size 30) while a fast writer keeps appending. With a small
# spool_max the spool fills, the ship pauses the tailers (nines_agent_ship_paused = 1 and
# the read counter stops growing while the spool is at its cap); nothing is dropped. Once the
# receiver accepts again, every line arrives.
source "$(dirname "$0")/lib.inc"
source "$NN_SOURCE_DIR/tests/e2e/agent.inc"
BP=${NN_BACKPRESSURE_SECONDS:-10}
RATE=${NN_BACKPRESSURE_RATE:-20000}
LINES=$((RATE * (BP + 4)))
SPOOL_MAX=$((2 << 20))
export E2E_BATCH_SIZE=128KiB

aport=$(nn_free_port)
sport=$(nn_free_port)
e2e_sink_start "$sport" "$NN_TMP/sink.rec"
e2e_agent_config "$NN_TMP/agent.yml" "$aport" "http://127.0.0.1:$sport/loki/api/v1/push" "" \
  "      spool_max: $SPOOL_MAX"
e2e_agent_start "$NN_TMP/agent.yml" "$aport"
log=$(e2e_log_path bp)
t0=$(($(date +%s%N) - 120000000000))
python3 "$E2E/cri_writer.py" --path "$log" --lines "$LINES" --rate "$RATE" --t0-ns "$t0" --random-pad \
  >"$NN_TMP/writer.out" 2>&1 &
wpid=$!
NN_PIDS+=("$wpid")
spool='^nines_agent_ship_spool_bytes\{source="logs",destination="sink"\}'

sleep 1
curl -fsS "http://127.0.0.1:$sport/control?mode=429" >/dev/null
e2e_note "receiver answers 429 for $BP s"
nn_check "the ship pauses the tailers" e2e_wait_metric "$aport" '^nines_agent_ship_paused\{' 1 "$BP"
r1=$(e2e_metric "$aport" '^nines_agent_read_bytes_total')
sleep 1.5
r2=$(e2e_metric "$aport" '^nines_agent_read_bytes_total')
sp=$(e2e_metric "$aport" "$spool")
paused=$(e2e_metric "$aport" '^nines_agent_ship_paused\{')
e2e_note "paused=$paused read bytes $r1 -> $r2, spool $sp of $SPOOL_MAX"
# One read chunk (64 KiB) may still be in progress when the pause lands.
nn_check "reading stopped while paused" test $((r2 - r1)) -le 65536
nn_check "the spool stays under spool_max" test "$sp" -le "$SPOOL_MAX"
nn_check "the spool is near its cap" test "$sp" -ge $((SPOOL_MAX / 2))
sleep $((BP > 4 ? BP - 4 : 0))
curl -fsS "http://127.0.0.1:$sport/control?mode=ok" >/dev/null
e2e_note "receiver accepts again"
wait "$wpid" && wrc=0 || wrc=$?
nn_check "writer finished" test "$wrc" = 0
cat "$NN_TMP/writer.out"
nn_check "every line delivered" e2e_wait_metric "$aport" '^nines_agent_ship_records_sent_total' "$LINES" 90
e2e_note "complete"
nn_check "resumed" test "$(e2e_metric "$aport" '^nines_agent_ship_paused\{')" = 0
curl -fsS "http://127.0.0.1:$sport/stats" >/dev/null
res=$(python3 "$E2E/check_lines.py" "$NN_TMP/sink.rec" --count "$LINES") && ok=0 || ok=1
echo "receiver: $res"
nn_check "nothing lost, no duplicates" test "$ok" = 0
nn_check "nothing dropped" test "$(e2e_metric "$aport" '^nines_agent_ship_records_dropped_total')" = 0
nn_check "429s were answered" test "$(e2e_json "$(curl -fsS "http://127.0.0.1:$sport/stats")" refused)" -gt 0
e2e_stop "$AGENT_PID"
nn_finish
