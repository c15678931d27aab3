#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Disk full (issue 9, fault suite): an 8 MiB tmpfs is mounted as the aggregator's
# --data-dir and another as the agent's data_dir, and each is filled to the last byte
# while the program works.
# * Aggregator: under remote-write and Loki push load, ingest answers 5xx or 429 (never a
#   2xx for data it could not write, never a crash); /-/healthy and queries keep working;
#   /metrics counts the failed WAL writes and the log says "No space left on device".
#   When space returns, writes are acknowledged and stored again, and everything
#   acknowledged before, during and after is served, also after a restart.
# * Agent: the receiver is down while the disk is full, so batches cannot be spooled; the
#   agent keeps running and tailing within its memory queue, says so in its log, and when
#   space and the receiver return every line arrives (zero lost; duplicates reported).
# Needs root for mount(8): skipped (exit 77, ctest SKIP_RETURN_CODE) otherwise. Everything
# mounted here is unmounted on exit.
if [ "$(id -u)" != 0 ]; then
  echo "skipped: needs root (mounts an 8 MiB tmpfs with mount -t tmpfs)"
  exit 77
fi
source "$(dirname "$0")/lib.inc"
source "$NN_SOURCE_DIR/tests/e2e/agent.inc"
PY=/usr/bin/python3 # Debian's, which has python3-snappy
LOAD=$E2E/rwload.py
CHECK=$E2E/ledger_check.py
MOUNTS=()

fault_cleanup() {
  local pid m
  for pid in "${NN_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  done
  for pid in "${NN_PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
  for m in "${MOUNTS[@]:-}"; do
    [ -n "$m" ] && { umount "$m" 2>/dev/null || umount -l "$m" || echo "cannot unmount $m"; }
  done
  nn_cleanup
}
trap fault_cleanup EXIT

# small_disk DIR: mounts an 8 MiB tmpfs on DIR (or skips the test where mounting is not
# allowed, e.g. root in an unprivileged container).
small_disk() {
  mkdir -p "$1"
  if ! mount -t tmpfs -o size=8m,mode=0755 tmpfs "$1"; then
    echo "skipped: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)"
    exit 77
  fi
  MOUNTS+=("$1")
}
# fill DIR: writes DIR/filler until the file system is full.
fill() { dd if=/dev/zero of="$1/filler" bs=64k status=none 2>/dev/null || true; }
avail_kb() { df -k --output=avail "$1" | tail -1 | tr -d ' '; }
alive() { kill -0 "$1" 2>/dev/null; }

# ---- aggregator ------------------------------------------------------------------------
small_disk "$NN_TMP/agg"
small_disk "$NN_TMP/agent-data"
gport=$(nn_free_port)
G=http://127.0.0.1:$gport
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$gport
data_dir: $NN_TMP/agg
storage:
  wal_flush_interval: 10ms
YML
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_wait_http "$G/-/ready" 60

load() { # RUN SECONDS: remote-write and Loki load side by side; summaries in $NN_TMP/*.RUN
  "$PY" "$LOAD" rw "$G/api/v1/write" "$NN_TMP/rw.ledger" --threads 2 --series 10 \
    --seconds "$2" --run "$1" >"$NN_TMP/rw.$1" 2>&1 &
  local p=$!
  "$PY" "$LOAD" loki "$G/loki/api/v1/push" "$NN_TMP/loki.ledger" --threads 2 --series 5 \
    --seconds "$2" --run "$1" >"$NN_TMP/loki.$1" 2>&1
  wait "$p" || true
  echo "# load $1: rw $(cat "$NN_TMP/rw.$1"); loki $(cat "$NN_TMP/loki.$1")"
}
# refused_ok FILE: the loader met at least one refusal and every refusal was 5xx or 429.
refused_ok() {
  "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
codes = [int(c) for c in d["refused"]]
sys.exit(0 if codes and all(c >= 500 or c == 429 for c in codes) and d["conn_errors"] == 0 else 1)' "$1"
}
acked_all() { grep -q '"acked": [1-9].*"refused": {}, "conn_errors": 0' "$1"; }

load before 2
nn_check "aggregator: writes acknowledged before the disk fills (rw)" acked_all "$NN_TMP/rw.before"
nn_check "aggregator: writes acknowledged before the disk fills (Loki)" acked_all "$NN_TMP/loki.before"
fill "$NN_TMP/agg"
e2e_note "aggregator disk full: $(avail_kb "$NN_TMP/agg") kB free"
load full 5
nn_check "aggregator: remote write refused with 5xx/429 while full" refused_ok "$NN_TMP/rw.full"
nn_check "aggregator: Loki push refused with 5xx/429 while full" refused_ok "$NN_TMP/loki.full"
# The retry cases: a client that got a 5xx sends the same request again. Bodies of 300
# series (a WAL record larger than the slack left in a file's last page).
now_ms=$(($(date +%s) * 1000))
rwbody() { "$PY" "$E2E/hostile.py" --rw "$NN_TMP/$1" "$2" "$3" "$4" 300; } # FILE METRIC TS V
rwpost() {
  curl -s -o "$NN_TMP/resp" -w '%{http_code}' "$G/api/v1/write" --data-binary @"$NN_TMP/$1" \
    -H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy'
}
# lokibody FILE JOB TS_NS TAG: 100 streams of JOB, one entry each.
lokibody() {
  python3 -c '
import json, sys
job, ts, tag = sys.argv[2], sys.argv[3], sys.argv[4]
json.dump({"streams": [{"stream": {"job": job, "stream": "%s-%d" % (job, k)},
                        "values": [[ts, "%s line %d %s" % (tag, k, "x" * 40)]]} for k in range(100)]},
          open(sys.argv[1], "w"))' "$NN_TMP/$1" "$2" "$3" "$4"
}
lokipost() { # FILE [BATCH_ID]
  curl -s -o "$NN_TMP/resp" -w '%{http_code}' "$G/loki/api/v1/push" -H 'Content-Type: application/json' \
    ${2:+-H "X-Nines-Batch-Id: $2"} --data-binary @"$NN_TMP/$1"
}
is_5xx_429() { [ "$1" -ge 500 ] || [ "$1" = 429 ]; }
rwbody a2 df_old $((now_ms - 2000)) 2    # series that existed before the disk filled
rwbody b2 df_new $((now_ms - 2000)) 2    # series first seen while full
rwbody b3 df_new $((now_ms - 1000)) 3
lokibody la2 df_old "$(((now_ms - 2000) * 1000000))" a2
lokibody lb2 df_new "$(((now_ms - 2000) * 1000000))" b2
lokibody lb3 df_new "$(((now_ms - 1000) * 1000000))" b3
code=$(rwpost a2)
echo "# a write while full: $code $(head -c 300 "$NN_TMP/resp")"
nn_check "aggregator: a write while full gets 5xx/429 ($code)" is_5xx_429 "$code"
nn_check "aggregator: the answer says why" grep -qi 'space\|disk\|wal' "$NN_TMP/resp"
code=$(rwpost a2)
nn_check "aggregator: the same write again (the client's retry) is not acknowledged while full ($code)" \
  is_5xx_429 "$code"
code=$(rwpost b2)
nn_check "aggregator: samples of series first seen while full get 5xx/429 ($code)" is_5xx_429 "$code"
code=$(lokipost la2 df-la2)
nn_check "aggregator: a Loki push while full gets 5xx/429 ($code)" is_5xx_429 "$code"
code=$(lokipost la2 df-la2)
nn_check "aggregator: the same push again (same batch id) is not acknowledged while full ($code)" \
  is_5xx_429 "$code"
code=$(lokipost la2)
nn_check "aggregator: the same push again (no batch id) is not acknowledged while full ($code)" \
  is_5xx_429 "$code"
code=$(lokipost lb2 df-lb2)
nn_check "aggregator: a push of streams first seen while full gets 5xx/429 ($code)" is_5xx_429 "$code"
nn_check "aggregator: still running" alive "$PID_agg"
nn_check "aggregator: /-/healthy answers while full" curl -fsS -o /dev/null --max-time 5 "$G/-/healthy"
nn_check "aggregator: queries work while full" \
  bash -c "curl -fsS --max-time 10 '$G/api/v1/query?query=count(rwload_value)' | grep -q success"
# Keep writing for a while: every answer stays a 5xx/429, and the process stays up.
codes=""
for ((i = 0; i < 20; i++)); do
  codes+=" $(rwpost a2)"
  sleep 0.1
done
all_5xx_429() {
  local c
  for c in "$@"; do [ "$c" -ge 500 ] || [ "$c" = 429 ] || return 1; done
}
# shellcheck disable=SC2086
nn_check "aggregator: 20 more writes while full all get 5xx/429 ($codes)" all_5xx_429 $codes
fails=$(e2e_metric "$gport" '^nines_tsdb_wal_write_failures_total')
nn_check "aggregator: /metrics counts failed WAL writes ($fails)" [ "$fails" -gt 0 ]
for h in remote_write loki_push; do
  n=$(e2e_metric "$gport" "^nines_ingest_requests_total\\{handler=\"$h\",code=\"5xx\"\\}")
  nn_check "aggregator: /metrics counts the $h 5xx answers ($n)" [ "$n" -gt 0 ]
done
nn_check "aggregator: the log says the disk is full" grep -q 'No space left on device' "$NN_TMP/agg.log"
rm -f "$NN_TMP/agg/filler"
e2e_note "aggregator disk has room again: $(avail_kb "$NN_TMP/agg") kB free"
sleep 1
code=$(rwpost a2)
nn_check "aggregator: the retried write is acknowledged once there is room ($code)" [ "$code" = 204 ]
code=$(rwpost b3)
nn_check "aggregator: the new series take samples once there is room ($code)" [ "$code" = 204 ]
code=$(lokipost la2 df-la2)
nn_check "aggregator: the retried push is acknowledged once there is room ($code)" [ "$code" = 204 ]
code=$(lokipost lb3 df-lb3)
nn_check "aggregator: the new streams take entries once there is room ($code)" [ "$code" = 204 ]
load after 3
nn_check "aggregator: writes acknowledged again once there is room (rw)" acked_all "$NN_TMP/rw.after"
nn_check "aggregator: writes acknowledged again once there is room (Loki)" acked_all "$NN_TMP/loki.after"
nn_check "aggregator: every acknowledged sample is stored" "$PY" "$CHECK" rw "$G" "$NN_TMP/rw.ledger"
nn_check "aggregator: every acknowledged log entry is stored" "$PY" "$CHECK" loki "$G" "$NN_TMP/loki.ledger"
e2e_stop "$PID_agg"
nn_start agg2 "$AGG" --config "$NN_TMP/agg.yml"
nn_check "aggregator: restarts on the same data dir" nn_wait_http "$G/-/ready" 60
nn_check "aggregator: after a restart every acknowledged sample is there" \
  "$PY" "$CHECK" rw "$G" "$NN_TMP/rw.ledger"
nn_check "aggregator: after a restart every acknowledged log entry is there" \
  "$PY" "$CHECK" loki "$G" "$NN_TMP/loki.ledger"
# values METRIC: the sorted distinct values of METRIC's samples, and the series count.
values() {
  curl -fsS "$G/api/v1/query" --data-urlencode "query=$1[5m]" --data-urlencode "time=$((now_ms / 1000))" |
    "$PY" -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(len(r), sorted({v[1] for s in r for v in s["values"]}))'
}
# lines JOB: the count of each tag among JOB's log lines.
lines() {
  curl -fsS "$G/loki/api/v1/query_range" --data-urlencode "query={job=\"$1\"}" --data-urlencode since=1h \
    --data-urlencode limit=5000 |
    "$PY" -c 'import collections,json,sys; r=json.load(sys.stdin)["data"]["result"]; print(sorted(collections.Counter(v[1].split()[0] for s in r for v in s["values"]).items()))'
}
v=$(values df_old)
nn_check "aggregator: after a restart the retried write is there ($v)" [ "$v" = "300 ['2']" ]
v=$(values df_new)
nn_check "aggregator: after a restart the series first seen while full have their later samples ($v)" \
  [ "$v" = "300 ['3']" ]
v=$(lines df_old)
nn_check "aggregator: after a restart the retried push is there ($v)" [ "$v" = "[('a2', 100)]" ]
v=$(lines df_new)
nn_check "aggregator: after a restart the streams first seen while full have their later entries ($v)" \
  [ "$v" = "[('b3', 100)]" ]
e2e_stop "$PID_agg2"

# ---- agent -----------------------------------------------------------------------------
FULL=${NN_DISKFULL_SECONDS:-10}
RATE=${NN_DISKFULL_RATE:-20000}
LINES=$((RATE * (FULL + 5)))
MEM_QUEUE_MAX=$((8 << 20)) # the ship's per-destination memory queue (agent/ship/ship.c)
aport=$(nn_free_port)
sport=$(nn_free_port)
e2e_sink_start "$sport" "$NN_TMP/sink.rec"
export E2E_BATCH_SIZE=64KiB
e2e_agent_config "$NN_TMP/agent.yml" "$aport" "http://127.0.0.1:$sport/loki/api/v1/push" "" \
  "      timeout: 2s"
e2e_agent_start "$NN_TMP/agent.yml" "$aport"
log=$(e2e_log_path diskfull)
t0=$(($(date +%s%N) - 120000000000))
python3 "$E2E/cri_writer.py" --path "$log" --lines "$LINES" --rate "$RATE" --t0-ns "$t0" \
  >"$NN_TMP/writer.out" 2>&1 &
wpid=$!
NN_PIDS+=("$wpid")
sleep 2
fill "$NN_TMP/agent-data"
e2e_stop "$SINK_PID"
e2e_note "agent disk full ($(avail_kb "$NN_TMP/agent-data") kB free) and the receiver down"
spool_errors='^nines_agent_ship_spool_write_errors_total\{source="logs",destination="sink"\}'
nn_check "agent: /metrics counts the batches the spool could not write" \
  e2e_wait_metric "$aport" "$spool_errors" 1 "$FULL"
# The memory queue takes what the spool cannot, up to its cap; then the tailers pause.
nn_check "agent: the tailers pause when the memory queue is full" \
  e2e_wait_metric "$aport" '^nines_agent_ship_paused\{source="logs"\}' 1 "$FULL"
sleep 2
nn_check "agent: still running with a full disk" alive "$AGENT_PID"
nn_check "agent: /-/healthy answers" curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$aport/-/healthy"
nn_check "agent: the log says the disk is full" grep -q 'No space left on device' "$NN_TMP/agent.log"
curl -fsS "http://127.0.0.1:$aport/metrics" | grep -E '^nines_agent_(ship_(spool_bytes|queue_bytes|paused|backoff_failures)|overflow_bytes)' | sed 's/^/# /'
q=$(e2e_metric "$aport" '^nines_agent_ship_queue_bytes\{source="logs",destination="sink"\}')
nn_check "agent: the memory queue stays bounded ($q bytes <= 2 x $MEM_QUEUE_MAX + a batch)" \
  [ "$q" -le $((2 * MEM_QUEUE_MAX + (64 << 10))) ]
rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$AGENT_PID/status")
e2e_note "agent RSS with a full disk: $rss kB"
nn_check "agent: RSS bounded with a full disk ($rss kB < 96 MiB)" [ "$rss" -lt $((96 * 1024)) ]
rm -f "$NN_TMP/agent-data/filler"
e2e_note "agent disk has room again (the receiver is still down)"
nn_check "agent: the spool takes batches again once there is room" \
  e2e_wait_metric "$aport" '^nines_agent_ship_spool_bytes\{source="logs",destination="sink"\}' 1 60
nn_check "agent: the tailers resume" \
  e2e_wait_metric_eq "$aport" '^nines_agent_ship_paused\{source="logs"\}' 0 30
e2e_sink_start "$sport" "$NN_TMP/sink.rec"
e2e_note "the receiver is back"
wait "$wpid" && wrc=0 || wrc=$?
nn_check "writer finished" test "$wrc" = 0
wait_complete() {
  local i
  for ((i = 0; i < 240; i++)); do
    curl -fsS "http://127.0.0.1:$sport/stats" >/dev/null
    python3 "$E2E/check_lines.py" "$NN_TMP/sink.rec" --count "$LINES" --max-dups 100000000 >/dev/null && return 0
    sleep 0.5
  done
  return 1
}
nn_check "agent: the receiver got every line" wait_complete
e2e_note "complete"
curl -fsS "http://127.0.0.1:$sport/stats" >/dev/null
res=$(python3 "$E2E/check_lines.py" "$NN_TMP/sink.rec" --count "$LINES" --max-dups "$LINES") && ok=0 || ok=1
echo "receiver: $res"
nn_check "agent: nothing lost (duplicates reported above)" test "$ok" = 0
nn_check "agent: nothing dropped" test "$(e2e_metric "$aport" '^nines_agent_ship_records_dropped_total')" = 0
e2e_stop "$AGENT_PID"
nn_finish
