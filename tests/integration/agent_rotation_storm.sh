#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Rotation storm (AGENTS.md §5 complaint 1): a writer appends NN_STORM_LINES numbered CRI
# lines (stdout and stderr, every 7th entry split into P fragments) and rotates every 0.2 s,
# alternating rename+create and copytruncate. nines-agent ships them to nines-aggregator;
# everything is read back page by page through /loki/api/v1/query_range and every line must
# be there exactly once, in order per stream. copytruncate is only lossless if the tailer has
# read the file before it is truncated (logrotate's copy-then-truncate window loses whatever
# is written in between, whoever tails), so the writer waits for the agent's read counter
# before each truncate, as the tail unit test does. Full size: NN_STORM_LINES=1000000.
source "$(dirname "$0")/lib.inc"
source "$NN_SOURCE_DIR/tests/e2e/agent.inc"
LINES=${NN_STORM_LINES:-300000}
# Paced so that the rotations really come every 0.2 s: unpaced, each copytruncate waits for
# the agent to catch up (bytes truncated before anyone read them are lost by any tailer).
RATE=${NN_STORM_RATE:-20000}

aport=$(nn_free_port)
gport=$(nn_free_port)
nn_start agg "$AGG" --listen-address "127.0.0.1:$gport" --data-dir "$NN_TMP/agg"
nn_wait_http "http://127.0.0.1:$gport/-/ready"
e2e_agent_config "$NN_TMP/agent.yml" "$aport" "http://127.0.0.1:$gport/loki/api/v1/push"
e2e_agent_start "$NN_TMP/agent.yml" "$aport"

log=$(e2e_log_path storm)
t0=$(($(date +%s%N) - 120000000000))
t_start=$(date +%s.%N)
w=$(timeout 300 python3 "$E2E/cri_writer.py" --path "$log" --lines "$LINES" --rate "$RATE" \
  --rotate-every 0.2 --copytruncate --metrics "http://127.0.0.1:$aport/metrics" --t0-ns "$t0")
echo "writer: $w"
nn_check "writer finished" test -n "$w"
t_written=$(date +%s.%N)
nn_check "agent shipped all $LINES entries" \
  e2e_wait_metric "$aport" '^nines_agent_ship_records_sent_total' "$LINES" 180
t_done=$(date +%s.%N)
e2e_note "writer done after $(echo "$t_written - $t_start" | bc) s, all delivered after $(echo "$t_done - $t_start" | bc) s"

nn_check "read back from the aggregator" python3 "$E2E/loki_query.py" --url "http://127.0.0.1:$gport" \
  --query '{container="storm"}' --start-ns "$t0" --end-ns $((t0 + LINES * 1000 + 1)) \
  --limit 5000 --out "$NN_TMP/got"
e2e_note "read back"
res=$(python3 "$E2E/check_lines.py" "$NN_TMP/got" --count "$LINES" --strict-order) && ok=0 || ok=1
echo "aggregator: $res"
nn_check "every line exactly once, in order per stream" test "$ok" = 0
m=$(curl -fsS "http://127.0.0.1:$aport/metrics")
echo "$m" | grep -E '^nines_agent_(rotations_total|dropped_bytes_total|read_bytes_total|entries_total|ship_records_dropped_total)' | grep -v ' 0$' || true
nn_check "rotated about every 0.2 s (at least half of seconds / 0.2 rotations)" python3 -c '
import re, sys
m = dict(re.findall(r"(\w+)=([\d.]+)", sys.argv[1]))
sys.exit(0 if int(m["renames"]) + int(m["copytruncates"]) >= 0.5 * float(m["seconds"]) / 0.2 else 1)' "$w"
nn_check "renames seen" test "$(e2e_metric "$aport" '^nines_agent_rotations_total\{kind="rename"')" -gt 0
nn_check "truncations seen" test "$(e2e_metric "$aport" '^nines_agent_rotations_total\{kind="truncate"')" -gt 0
nn_check "no bytes dropped" test "$(e2e_metric "$aport" '^nines_agent_dropped_bytes_total')" = 0
nn_check "no records dropped" test "$(e2e_metric "$aport" '^nines_agent_ship_records_dropped_total')" = 0
e2e_stop "$AGENT_PID"
e2e_note "agent stopped"
nn_finish
