#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Slow and broken peers (issue 9, fault suite). Four bad receivers (tests/e2e/bad_peer.py):
# one that accepts and never answers (hang), one that answers one byte at a time (slow), one
# that resets the connection (reset), one that answers garbage that is not a 2xx (random
# bytes, a binary status line, a 500 announcing 1 TiB, a header that never ends).
# The agent ships logs (Loki push) and remote write (scrapes of a generated target) to each
# of them, and the aggregator's notifier sends an always-firing alert to each, all with a
# 2 s timeout; one good remote-write receiver and one good Alertmanager serve as controls.
# For NN_PEERS_BAD_SECONDS every client must fail, time out and retry (failure counters
# grow, nothing counts as delivered), stay healthy, and keep its RSS (/proc/PID/status)
# under a stated bound. Then each bad peer is replaced by a good one on the same port:
# every log line arrives at every receiver (zero lost, duplicates reported), every sample
# the control got before the switch arrives too, and alerts arrive.
source "$(dirname "$0")/lib.inc"
source "$NN_SOURCE_DIR/tests/e2e/agent.inc"
PY=/usr/bin/python3 # Debian's, with python3-snappy
BAD=${NN_PEERS_BAD_SECONDS:-20}
RATE=${NN_PEERS_RATE:-2000}
LINES=$((RATE * (BAD + 5)))
AGENT_RSS_CAP_KB=$((64 * 1024))
AGG_RSS_CAP_KB=$((64 * 1024))
MODES=(hang slow reset garbage)

declare -A PORT PEER
for m in "${MODES[@]}" control; do PORT[$m]=$(nn_free_port); done
aport=$(nn_free_port)
gport=$(nn_free_port)
tport=$(nn_free_port)

# peer NAME MODE: starts bad_peer.py on NAME's port; PEER[NAME] is its PID.
peer() {
  "$PY" "$E2E/bad_peer.py" --listen "127.0.0.1:${PORT[$1]}" --mode "$2" --out "$NN_TMP/$1" \
    >>"$NN_TMP/peer-$1.log" 2>&1 &
  PEER[$1]=$!
  NN_PIDS+=("$!")
}
# tcp_up PORT: waits until something accepts connections on PORT.
tcp_up() {
  local i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
for m in "${MODES[@]}"; do peer "$m" "$m"; done
peer control ok
for m in "${MODES[@]}" control; do tcp_up "${PORT[$m]}"; done

nn_start target "$PY" "$E2E/scrape_target.py" gen --port "$tport" --vanish-after 100000
cat >"$NN_TMP/rules.yml" <<'YML'
groups:
  - name: fault
    rules:
      - alert: FaultAlwaysFiring
        expr: vector(1)
        labels: {severity: none}
YML
{
  echo "listen_address: 127.0.0.1:$gport"
  echo "data_dir: $NN_TMP/agg"
  echo "storage: {wal_fsync: false}"
  echo "rules: {rule_files: [$NN_TMP/rules.yml], evaluation_interval: 1s, resend_delay: 1s}"
  echo "alerting:"
  echo "  alertmanagers:"
  for m in "${MODES[@]}" control; do
    echo "    - {url: 'http://127.0.0.1:${PORT[$m]}', timeout: 2s}"
  done
} >"$NN_TMP/agg.yml"
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"

{
  echo "listen_address: 127.0.0.1:$aport"
  echo "data_dir: $NN_TMP/agent-data"
  echo "logs:"
  echo "  include: [$LOGDIR/*.log]"
  echo "  batch_size: 64KiB"
  echo "  batch_wait: 200ms"
  echo "  destinations:"
  for m in "${MODES[@]}"; do
    echo "    - {name: $m, url: 'http://127.0.0.1:${PORT[$m]}/loki/api/v1/push', codec: snappy, timeout: 2s}"
  done
  echo "scrape:"
  echo "  scrape_interval: 1s"
  echo "  scrape_timeout: 1s"
  echo "  scrape_configs:"
  echo "    - {job_name: gen, static_configs: [{targets: ['127.0.0.1:$tport']}]}"
  echo "remote_write:"
  echo "  batch_wait: 200ms"
  echo "  destinations:"
  for m in "${MODES[@]}" control; do
    echo "    - {name: $m, url: 'http://127.0.0.1:${PORT[$m]}/api/v1/write', codec: snappy, timeout: 2s}"
  done
} >"$NN_TMP/agent.yml"
nn_wait_http "http://127.0.0.1:$gport/-/ready" 60
e2e_agent_start "$NN_TMP/agent.yml" "$aport"

log=$(e2e_log_path peers)
t0=$(($(date +%s%N) - 120000000000))
python3 "$E2E/cri_writer.py" --path "$log" --lines "$LINES" --rate "$RATE" --t0-ns "$t0" \
  >"$NN_TMP/writer.out" 2>&1 &
wpid=$!
NN_PIDS+=("$wpid")

rss_kb() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
max_agent=0 max_agg=0
e2e_note "bad peers for $BAD s"
for ((i = 0; i < BAD; i++)); do
  sleep 1
  r=$(rss_kb "$AGENT_PID")
  [ "${r:-0}" -gt "$max_agent" ] && max_agent=$r
  r=$(rss_kb "$PID_agg")
  [ "${r:-0}" -gt "$max_agg" ] && max_agg=$r
done
e2e_note "max RSS: agent $max_agent kB, aggregator $max_agg kB"

am() { e2e_metric "$gport" "^nines_notifications_$1_total\\{alertmanager=\"http://127.0.0.1:${PORT[$2]}\""; }
ship() { e2e_metric "$aport" "^nines_agent_ship_$1\\{source=\"$2\",destination=\"$3\"\\}"; }
for m in "${MODES[@]}"; do
  for src in logs metrics; do
    f=$(ship batches_failed_total "$src" "$m")
    s=$(ship batches_sent_total "$src" "$m")
    echo "# $m $src: failed $f, sent $s, retried $(ship batches_retried_total "$src" "$m")"
    nn_check "agent $src -> $m: failed and retried (failures $f >= 3)" [ "$f" -ge 3 ]
    nn_check "agent $src -> $m: nothing counted as delivered" [ "$s" = 0 ]
  done
  e=$(am errors "$m")
  s=$(am sent "$m")
  echo "# $m alertmanager: errors $e, sent $s"
  nn_check "notifier -> $m: failed again and again (errors $e >= 3)" [ "$e" -ge 3 ]
  nn_check "notifier -> $m: nothing counted as sent" [ "$s" = 0 ]
done
nn_check "agent -> control receiver: samples delivered meanwhile" \
  [ "$(ship records_sent_total metrics control)" -gt 0 ]
nn_check "notifier -> control Alertmanager: alerts delivered meanwhile" [ "$(am sent control)" -gt 0 ]
nn_check "the hang peer saw several connections (the client timed out and reconnected)" \
  [ "$(wc -l <"$NN_TMP/hang.conns")" -ge 3 ]
nn_check "agent healthy" curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$aport/-/healthy"
nn_check "aggregator healthy" curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$gport/-/healthy"
nn_check "agent RSS stayed under $AGENT_RSS_CAP_KB kB (max $max_agent kB)" [ "$max_agent" -lt "$AGENT_RSS_CAP_KB" ]
nn_check "aggregator RSS stayed under $AGG_RSS_CAP_KB kB (max $max_agg kB)" [ "$max_agg" -lt "$AGG_RSS_CAP_KB" ]

# Good receivers come back on the same ports.
switch_ms=$(($(date +%s%N) / 1000000))
for m in "${MODES[@]}"; do
  e2e_stop "${PEER[$m]}"
  peer "$m" ok
done
for m in "${MODES[@]}"; do tcp_up "${PORT[$m]}"; done
e2e_note "good receivers back"
wait "$wpid" && wrc=0 || wrc=$?
nn_check "writer finished" test "$wrc" = 0

# all_lines NAME: NAME's receiver has every line (duplicates allowed here, reported below).
all_lines() {
  [ -f "$NN_TMP/$1.logs" ] &&
    python3 "$E2E/check_lines.py" "$NN_TMP/$1.logs" --count "$LINES" --max-dups 100000000 >/dev/null
}
# has_control_samples NAME: every sample the control got before the switch is in NAME's file.
has_control_samples() {
  [ -f "$NN_TMP/$1.rw" ] && "$PY" - "$NN_TMP/control.rw" "$NN_TMP/$1.rw" "$switch_ms" <<'EOF'
import sys
cut = int(sys.argv[3])
want = {l for l in open(sys.argv[1]) if int(l.rsplit("\t", 1)[1]) <= cut}
got = set(open(sys.argv[2]))
sys.exit(0 if want and want <= got else 1)
EOF
}
has_alerts() { [ -s "$NN_TMP/$1.alerts" ] && grep -q FaultAlwaysFiring "$NN_TMP/$1.alerts"; }
wait_for() { # SECONDS CMD...
  local i n=$(($1 * 2))
  shift
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 0.5
  done
  return 1
}
for m in "${MODES[@]}"; do
  nn_check "$m: the good receiver got every log line" wait_for 120 all_lines "$m"
  res=$(python3 "$E2E/check_lines.py" "$NN_TMP/$m.logs" --count "$LINES" --max-dups "$LINES") || true
  echo "# $m logs: $res"
  nn_check "$m: every sample the control got before the switch arrived" \
    wait_for 60 has_control_samples "$m"
  nn_check "$m: alerts arrive" wait_for 30 has_alerts "$m"
done
e2e_note "recovered"
nn_check "agent: nothing dropped" test "$(e2e_metric "$aport" '^nines_agent_ship_records_dropped_total')" = 0
r=$(rss_kb "$AGENT_PID")
echo "# agent RSS after recovery: $r kB; aggregator: $(rss_kb "$PID_agg") kB"
e2e_stop "$AGENT_PID"
nn_finish
