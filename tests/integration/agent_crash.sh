#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Crash (AGENTS.md §5 complaints 2 and 3): while a writer appends NN_CRASH_LINES numbered CRI
# lines, nines-agent is killed with SIGKILL NN_CRASH_KILLS times at random moments and
# restarted each time. It ships to two destinations at once: nines-aggregator (which drops
# re-sent batch ids, X-Nines-Batch-Id) and a counting sink that keeps everything it gets.
# Nothing may be lost at either. The sink may see what was in flight and not yet checkpointed
# again: at most one batch per kill is asserted (0.3-0.55 is typical since the checkpoint
# follows acknowledgements); the aggregator must hold no duplicate at all. Full size:
# NN_CRASH_LINES=500000 NN_CRASH_RATE=10000.
source "$(dirname "$0")/lib.inc"
source "$NN_SOURCE_DIR/tests/e2e/agent.inc"
LINES=${NN_CRASH_LINES:-150000}
RATE=${NN_CRASH_RATE:-5000}
KILLS=${NN_CRASH_KILLS:-20}
# Batches close by age (batch_wait 200 ms in agent.inc; batch_size cannot go below
# max_line_size plus overhead), so a batch holds about RATE/5 lines.
BATCH_RECORDS=$((RATE / 5))

aport=$(nn_free_port)
gport=$(nn_free_port)
sport=$(nn_free_port)
nn_start agg "$AGG" --listen-address "127.0.0.1:$gport" --data-dir "$NN_TMP/agg"
nn_wait_http "http://127.0.0.1:$gport/-/ready"
e2e_sink_start "$sport" "$NN_TMP/sink.rec"
e2e_agent_config "$NN_TMP/agent.yml" "$aport" "http://127.0.0.1:$sport/loki/api/v1/push" "" \
  "    - name: agg
      url: http://127.0.0.1:$gport/loki/api/v1/push
      codec: snappy"
e2e_agent_start "$NN_TMP/agent.yml" "$aport"

log=$(e2e_log_path crash)
t0=$(($(date +%s%N) - 120000000000))
python3 "$E2E/cri_writer.py" --path "$log" --lines "$LINES" --rate "$RATE" --t0-ns "$t0" \
  >"$NN_TMP/writer.out" 2>&1 &
wpid=$!
NN_PIDS+=("$wpid")

kills=0
t_start=$(date +%s.%N)
while [ "$kills" -lt "$KILLS" ]; do
  sleep "$(python3 -c 'import random; print(round(random.uniform(0.2, 1.6), 2))')"
  kill -9 "$AGENT_PID"
  wait "$AGENT_PID" 2>/dev/null || true
  kills=$((kills + 1))
  e2e_agent_start "$NN_TMP/agent.yml" "$aport" || break
done
echo "$kills kills in $(echo "$(date +%s.%N) - $t_start" | bc) s; writer still running: $(kill -0 $wpid 2>/dev/null && echo yes || echo no)"
nn_check "killed $KILLS times" test "$kills" = "$KILLS"
wait "$wpid" && wrc=0 || wrc=$?
nn_check "writer finished" test "$wrc" = 0
cat "$NN_TMP/writer.out"

# Wait until the sink has every line (the last agent run drains what is left).
wait_complete() {
  local i
  for ((i = 0; i < 240; i++)); do
    curl -fsS "http://127.0.0.1:$sport/stats" >/dev/null # flushes the sink's record file
    python3 "$E2E/check_lines.py" "$NN_TMP/sink.rec" --count "$LINES" --max-dups 100000000 >/dev/null && return 0
    sleep 0.5
  done
  return 1
}
curl -fsS "http://127.0.0.1:$sport/stats" >/dev/null
nn_check "the sink got every line" wait_complete
sleep 1
e2e_stop "$AGENT_PID"
curl -fsS "http://127.0.0.1:$sport/stats" >/dev/null
MAXDUPS=$((KILLS * BATCH_RECORDS))
res=$(python3 "$E2E/check_lines.py" "$NN_TMP/sink.rec" --count "$LINES" --max-dups "$MAXDUPS") && ok=0 || ok=1
echo "sink (no receiver dedup): $res"
nn_check "sink: nothing lost, duplicates <= one batch per kill ($MAXDUPS)" test "$ok" = 0

nn_check "read back from the aggregator" python3 "$E2E/loki_query.py" --url "http://127.0.0.1:$gport" \
  --query '{container="crash"}' --start-ns "$t0" --end-ns $((t0 + LINES * 1000 + 1)) \
  --limit 5000 --out "$NN_TMP/got"
# The aggregator drops re-sent batch ids and, for re-batched resends, entries identical
# (stream, timestamp, line) to ones already stored, in the head or in cut chunks.
res=$(python3 "$E2E/check_lines.py" "$NN_TMP/got" --count "$LINES" --max-dups 0) && ok=0 || ok=1
echo "aggregator (batch-id and entry dedup): $res"
nn_check "aggregator: nothing lost, zero duplicates" test "$ok" = 0
metrics=$(curl -fsS "http://127.0.0.1:$gport/metrics")
replays=$(awk '/^nines_logstore_idempotent_replays_total/ {print $NF}' <<<"$metrics")
dropped=$(awk '/^nines_logstore_duplicates_dropped_total/ {print $NF}' <<<"$metrics")
decodes=$(awk '/^nines_logstore_dedup_chunk_decodes_total/ {print $NF}' <<<"$metrics")
echo "aggregator idempotent replays: ${replays:-?}, duplicate entries dropped: ${dropped:-?}" \
  "(chunks decoded to find them: ${decodes:-?})"
nn_finish
