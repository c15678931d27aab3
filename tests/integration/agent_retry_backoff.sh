#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A destination's retry block caps the backoff: with retry {min_backoff: 100ms, max_backoff:
# 1s}, the receiver down for NN_BACKOFF_OUTAGE seconds (default 12; the default 60 s cap
# would by then allow waits of 8-16 s), the agent's chosen delay never exceeds 1 s, and once
# the receiver is back every line arrives within a few seconds.
source "$(dirname "$0")/lib.inc"
source "$NN_SOURCE_DIR/tests/e2e/agent.inc"
OUT=${NN_BACKOFF_OUTAGE:-12}
LINES=2000

aport=$(nn_free_port)
sport=$(nn_free_port)
e2e_sink_start "$sport" "$NN_TMP/sink.rec"
e2e_agent_config "$NN_TMP/agent.yml" "$aport" "http://127.0.0.1:$sport/loki/api/v1/push" "" \
  "      retry: {min_backoff: 100ms, max_backoff: 1s}"
e2e_agent_start "$NN_TMP/agent.yml" "$aport"
log=$(e2e_log_path backoff)
python3 "$E2E/cri_writer.py" --path "$log" --lines "$LINES" --rate 500 \
  --t0-ns "$(($(date +%s%N) - 60000000000))" >"$NN_TMP/writer.out" 2>&1 &
wpid=$!
NN_PIDS+=("$wpid")
delay='^nines_agent_ship_backoff_delay_seconds\{source="logs",destination="sink"\}'
fails='^nines_agent_ship_backoff_failures\{source="logs",destination="sink"\}'

sleep 1
e2e_stop "$SINK_PID"
e2e_note "receiver down for $OUT s"
# Sample the chosen delay through the outage; every sample must be <= 1 s.
maxd=0
for ((i = 0; i < OUT * 2; i++)); do
  d=$(curl -fsS "http://127.0.0.1:$aport/metrics" | awk -v re="$delay" '$0 ~ re { print $NF }')
  maxd=$(python3 -c 'import sys; print(max(float(sys.argv[1]), float(sys.argv[2] or 0)))' "$maxd" "${d:-0}")
  sleep 0.5
done
nf=$(e2e_metric "$aport" "$fails")
e2e_note "after the outage: $nf consecutive failures, longest delay seen ${maxd}s"
nn_check "the destination failed repeatedly during the outage ($nf)" test "$nf" -ge 8
nn_check "no backoff delay above max_backoff (${maxd}s)" \
  python3 -c 'import sys; sys.exit(not 0 < float(sys.argv[1]) <= 1.0)' "$maxd"
wait "$wpid" && wrc=0 || wrc=$?
nn_check "writer finished" test "$wrc" = 0
e2e_sink_start "$sport" "$NN_TMP/sink.rec"
back=$(date +%s%N)
e2e_note "receiver back"
complete() {
  python3 "$E2E/check_lines.py" "$NN_TMP/sink.rec" --count "$LINES" --max-dups 100000000 >/dev/null
}
# Bounded: 1 s to the next try at most, then the spool drains; 5 s is ample.
caught=1
for ((i = 0; i < 50; i++)); do
  curl -fsS "http://127.0.0.1:$sport/stats" >/dev/null
  complete && { caught=0; break; }
  sleep 0.1
done
took=$((($(date +%s%N) - back) / 1000000))
e2e_note "caught up: $([ $caught = 0 ] && echo yes || echo no) after $took ms"
nn_check "every line arrived within 5 s of the receiver's return (${took} ms)" test "$caught" = 0
nn_check "the destination is healthy again" e2e_wait_metric_eq "$aport" "$fails" 0 5
e2e_stop "$AGENT_PID"
nn_finish
