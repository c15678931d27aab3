#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Outage (AGENTS.md §5 complaint 6): under a steady load the receiver is down for
# NN_OUTAGE_SECONDS (connection refused; full size 60), and the agent is restarted
# gracefully in the middle of it. When the receiver returns, every line must arrive, none
# twice (the receiver here keeps everything, no batch-id dedup), and the disk spool must
# drain back to 0 bytes.
source "$(dirname "$0")/lib.inc"
source "$NN_SOURCE_DIR/tests/e2e/agent.inc"
OUT=${NN_OUTAGE_SECONDS:-20}
RATE=${NN_OUTAGE_RATE:-3000}
LINES=$((RATE * (OUT + 10)))

aport=$(nn_free_port)
sport=$(nn_free_port)
e2e_sink_start "$sport" "$NN_TMP/sink.rec"
e2e_agent_config "$NN_TMP/agent.yml" "$aport" "http://127.0.0.1:$sport/loki/api/v1/push"
e2e_agent_start "$NN_TMP/agent.yml" "$aport"
log=$(e2e_log_path outage)
t0=$(($(date +%s%N) - 120000000000))
python3 "$E2E/cri_writer.py" --path "$log" --lines "$LINES" --rate "$RATE" --t0-ns "$t0" \
  >"$NN_TMP/writer.out" 2>&1 &
wpid=$!
NN_PIDS+=("$wpid")
spool='^nines_agent_ship_spool_bytes\{source="logs",destination="sink"\}'

sleep 3
e2e_stop "$SINK_PID"
e2e_note "receiver down for $OUT s"
nn_check "the spool fills during the outage" e2e_wait_metric "$aport" "$spool" 1 "$OUT"
sleep $((OUT / 2))
spooled=$(e2e_metric "$aport" "$spool")
e2e_stop "$AGENT_PID"
e2e_note "agent stopped gracefully with $spooled spool bytes (before its own shutdown flush)"
e2e_agent_start "$NN_TMP/agent.yml" "$aport"
sleep $((OUT - OUT / 2))
e2e_sink_start "$sport" "$NN_TMP/sink.rec"
e2e_note "receiver back; spool holds $(e2e_metric "$aport" "$spool") bytes"
wait "$wpid" && wrc=0 || wrc=$?
nn_check "writer finished" test "$wrc" = 0
cat "$NN_TMP/writer.out"
wait_complete() {
  local i
  # Backoff after a long outage can be as long as its cap (60 s), so allow for it.
  for ((i = 0; i < 240; i++)); do
    curl -fsS "http://127.0.0.1:$sport/stats" >/dev/null
    python3 "$E2E/check_lines.py" "$NN_TMP/sink.rec" --count "$LINES" --max-dups 100000000 >/dev/null && return 0
    sleep 0.5
  done
  return 1
}
nn_check "the receiver got every line" wait_complete
e2e_note "complete"
nn_check "the spool drained to 0 bytes" e2e_wait_metric_eq "$aport" "$spool" 0 30
curl -fsS "http://127.0.0.1:$sport/stats" >/dev/null
res=$(python3 "$E2E/check_lines.py" "$NN_TMP/sink.rec" --count "$LINES") && ok=0 || ok=1
echo "receiver: $res"
nn_check "nothing lost, no duplicates" test "$ok" = 0
nn_check "nothing dropped" test "$(e2e_metric "$aport" '^nines_agent_ship_records_dropped_total')" = 0
e2e_stop "$AGENT_PID"
nn_finish
