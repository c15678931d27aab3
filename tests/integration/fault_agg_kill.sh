#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# SIGKILL of the receiver (issue 9, fault suite): the agent tails NN_AGGKILL_LINES numbered
# CRI lines and scrapes a generated target, shipping both to nines-aggregator (Loki push and
# remote write), while the aggregator is killed with SIGKILL NN_AGGKILL_KILLS times at random
# moments and restarted on the same data dir. (agg_crash.sh kills it under a synthetic load
# with a ledger; agent_crash.sh kills the agent; this is the agent -> aggregator path.)
# End to end, counted through the aggregator's own query APIs:
# * log lines via the Loki query API: zero lost; duplicates reported, and bounded by one
#   batch per kill;
# * samples: every sample a never-killed control receiver got (bad_peer.py --mode ok) up to
#   the last restart is served by the aggregator with the same timestamp.
source "$(dirname "$0")/lib.inc"
source "$NN_SOURCE_DIR/tests/e2e/agent.inc"
PY=/usr/bin/python3
LINES=${NN_AGGKILL_LINES:-100000}
RATE=${NN_AGGKILL_RATE:-4000}
KILLS=${NN_AGGKILL_KILLS:-6}
BATCH=64KiB # about 500 lines per batch

aport=$(nn_free_port)
gport=$(nn_free_port)
cport=$(nn_free_port)
tport=$(nn_free_port)
G=http://127.0.0.1:$gport
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$gport
data_dir: $NN_TMP/agg
storage:
  wal_flush_interval: 10ms
YML
run=0
start_agg() {
  run=$((run + 1))
  nn_start "agg$run" "$AGG" --config "$NN_TMP/agg.yml"
  AGG_PID=${NN_PIDS[-1]}
  nn_wait_http "$G/-/ready" 60
}
start_agg
nn_start control "$PY" "$E2E/bad_peer.py" --listen "127.0.0.1:$cport" --mode ok --out "$NN_TMP/control"
nn_start target "$PY" "$E2E/scrape_target.py" gen --port "$tport" --vanish-after 100000
nn_wait_http "http://127.0.0.1:$cport/-/ready"
cat >"$NN_TMP/agent.yml" <<YML
listen_address: 127.0.0.1:$aport
data_dir: $NN_TMP/agent-data
logs:
  include: [$LOGDIR/*.log]
  batch_size: $BATCH
  batch_wait: 200ms
  destinations:
    - {name: agg, url: '$G/loki/api/v1/push', codec: zstd, timeout: 5s}
scrape:
  scrape_interval: 1s
  scrape_timeout: 1s
  scrape_configs:
    - {job_name: gen, static_configs: [{targets: ['127.0.0.1:$tport']}]}
remote_write:
  batch_wait: 200ms
  destinations:
    - {name: agg, url: '$G/api/v1/write', codec: zstd, timeout: 5s}
    - {name: control, url: 'http://127.0.0.1:$cport/api/v1/write', codec: snappy}
YML
e2e_agent_start "$NN_TMP/agent.yml" "$aport"

log=$(e2e_log_path aggkill)
t0=$(($(date +%s%N) - 120000000000))
python3 "$E2E/cri_writer.py" --path "$log" --lines "$LINES" --rate "$RATE" --t0-ns "$t0" \
  >"$NN_TMP/writer.out" 2>&1 &
wpid=$!
NN_PIDS+=("$wpid")

kills=0
while [ "$kills" -lt "$KILLS" ]; do
  sleep "$(awk -v r="$RANDOM" 'BEGIN{printf "%.2f", 0.5 + 3.0 * r / 32767}')"
  kill -KILL "$AGG_PID"
  wait "$AGG_PID" 2>/dev/null || true
  kills=$((kills + 1))
  sleep "$(awk -v r="$RANDOM" 'BEGIN{printf "%.2f", 0.1 + 1.0 * r / 32767}')"
  start_agg || break
done
last_start_ms=$(($(date +%s%N) / 1000000))
e2e_note "$kills kills; writer still running: $(kill -0 $wpid 2>/dev/null && echo yes || echo no)"
nn_check "the aggregator was killed $KILLS times and came back each time" test "$kills" = "$KILLS"
wait "$wpid" && wrc=0 || wrc=$?
nn_check "writer finished" test "$wrc" = 0

query_lines() {
  python3 "$E2E/loki_query.py" --url "$G" --query '{container="aggkill"}' --start-ns "$t0" \
    --end-ns $((t0 + LINES * 1000 + 1)) --limit 5000 --out "$NN_TMP/got" >/dev/null 2>&1
}
complete() {
  query_lines &&
    python3 "$E2E/check_lines.py" "$NN_TMP/got" --count "$LINES" --max-dups 100000000 >/dev/null
}
wait_complete() {
  local i
  for ((i = 0; i < 120; i++)); do
    complete && return 0
    sleep 1
  done
  return 1
}
nn_check "the aggregator serves every line" wait_complete
e2e_note "complete"
sleep 1
query_lines
res=$(python3 "$E2E/check_lines.py" "$NN_TMP/got" --count "$LINES" --max-dups 100000000) || true
echo "aggregator, read back through the Loki API: $res"
lost=$(e2e_json "$res" lost)
dups=$(e2e_json "$res" duplicates)
nn_check "zero lines lost ($lost)" [ "$lost" = 0 ]
nn_check "duplicates reported ($dups) and at most one batch per kill" [ "$dups" -le $((KILLS * 600)) ]
echo "agent: batches failed $(e2e_metric "$aport" '^nines_agent_ship_batches_failed_total'), retried $(e2e_metric "$aport" '^nines_agent_ship_batches_retried_total')"
nn_check "agent: nothing dropped" test "$(e2e_metric "$aport" '^nines_agent_ship_records_dropped_total')" = 0

# Samples: what the control got up to the last restart (minus a scrape interval and a batch)
# must all be served by the aggregator.
cut=$((last_start_ms - 2000))
samples_complete() {
  "$PY" - "$G" "$NN_TMP/control.rw" "$cut" <<'EOF'
import json, sys, urllib.parse, urllib.request
base, path, cut = sys.argv[1], sys.argv[2], int(sys.argv[3])
want = set()
tmin = None
for l in open(path):
    lab, ts = l.rstrip("\n").rsplit("\t", 1)
    ts = int(ts)
    if ts <= cut:
        want.add((lab, ts))
        tmin = ts if tmin is None else min(tmin, ts)
if not want:
    print("control got nothing")
    sys.exit(1)
window = (cut - tmin) // 1000 + 10
q = urllib.parse.urlencode({"query": '{job="gen"}[%ds]' % window, "time": "%.3f" % (cut / 1000)})
with urllib.request.urlopen(base + "/api/v1/query?" + q, timeout=30) as r:
    d = json.load(r)
got = set()
for s in d["data"]["result"]:
    lab = ",".join('%s="%s"' % kv for kv in sorted(s["metric"].items()))
    for ts, _ in s["values"]:
        got.add((lab, round(float(ts) * 1000)))
missing = want - got
print("samples: control %d up to the last restart, aggregator has %d of them, %d missing %s"
      % (len(want), len(want & got), len(missing), sorted(missing)[:3]))
sys.exit(1 if missing else 0)
EOF
}
for ((i = 0; i < 30; i++)); do samples_complete >"$NN_TMP/samples.out" && break; sleep 1; done
cat "$NN_TMP/samples.out"
nn_check "every sample the control got is served by the aggregator" samples_complete
e2e_stop "$AGENT_PID"
nn_finish
