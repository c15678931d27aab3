#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# High availability with the real data path (issue 9, "HA pair"): nines-fleet serves /metrics
# and writes container logs; ONE nines-agent scrapes and tails them and ships everything to
# two aggregators (two remote-write and two log destinations). The aggregators are an HA
# pair: the same rules, the same external labels, both sending to both Alertmanagers of a
# two-peer gossip cluster. An error spike must reach the webhook exactly once. Then one
# aggregator is killed with SIGKILL while the alert fires: the alert must stay active in both
# Alertmanagers for longer than its validity (no gap), its endsAt must keep moving forward,
# the agent must keep delivering to the survivor while it spools for the dead one, nothing may
# be dropped, and there must still be a single notification. Finally the killed aggregator is
# restarted and must catch up from the agent's spool: the same samples and log lines for the
# outage as the survivor, still without a second notification or a resolution.
source "$(dirname "$0")/lib.inc"
source "$(dirname "$0")/ha.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
AGENT=$NN_BINARY_DIR/agent/nines-agent
FLEET=$NN_BINARY_DIR/bench/fleet/nines-fleet
IV=1      # rule evaluation interval and resend delay: alerts are valid for 4 x 1 s = 4 s
OUTAGE=10 # seconds aggregator 1 stays dead: well over the validity
SPIKE=8   # seconds after the fleet starts that payments/api starts failing (25% 5xx)

for b in "$AM" "$AGG" "$AGENT" "$FLEET"; do
  if [ ! -x "$b" ]; then
    echo "SKIP: $b not installed"
    exit 0
  fi
done

hport=$(nn_free_port) aport=$(nn_free_port)
am1=$(nn_free_port) am2=$(nn_free_port) c1=$(nn_free_port) c2=$(nn_free_port)
p1=$(nn_free_port) p2=$(nn_free_port)
# nines-fleet serves its 10 services on 10 consecutive ports: find a free run of them.
fbase=$(python3 - <<'PY'
import random, socket
for _ in range(200):
    base = random.randrange(20000, 60000)
    socks = []
    try:
        for p in range(base, base + 10):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    break
PY
)
[ -n "$fbase" ] || { echo "no free run of 10 ports"; exit 1; }
pay=$((fbase + 4)) chk=$fbase # payments/api and checkout/api (nines-fleet --list)

cat >"$NN_TMP/rules.yml" <<'YML'
groups:
  - name: ha
    rules:
      - alert: HaAgentErrorRate
        expr: |
          sum by (project, service) (rate(http_requests_total{job="fleet",code="500"}[10s]))
            / sum by (project, service) (rate(http_requests_total{job="fleet"}[10s])) > 0.05
        labels: {severity: page}
YML
ha_configs 2s
cat >"$NN_TMP/agent.yml" <<YML
listen_address: 127.0.0.1:$aport
data_dir: $NN_TMP/agent
logs:
  include: [$NN_TMP/containers/*.log]
  batch_wait: 200ms
  destinations:
    - {name: agg1, url: "http://127.0.0.1:$p1/loki/api/v1/push", codec: zstd}
    - {name: agg2, url: "http://127.0.0.1:$p2/loki/api/v1/push", codec: zstd}
scrape:
  scrape_interval: 1s
  scrape_configs:
    - job_name: fleet
      static_configs:
        - targets: ["127.0.0.1:$pay"]
          labels: {project: payments, service: api}
        - targets: ["127.0.0.1:$chk"]
          labels: {project: checkout, service: api}
remote_write:
  batch_wait: 200ms
  destinations:
    - {name: agg1, url: "http://127.0.0.1:$p1/api/v1/write", codec: zstd}
    - {name: agg2, url: "http://127.0.0.1:$p2/api/v1/write", codec: zstd}
YML

ha_start_alertmanagers
nn_start agg1 "$AGG" --config "$NN_TMP/agg1.yml"
nn_start agg2 "$AGG" --config "$NN_TMP/agg2.yml"
nn_start fleet "$FLEET" --log-dir "$NN_TMP/containers" --base-port "$fbase" --spike-at "$SPIKE" \
  --spike-service payments/api --spike-rate 0.25 --latency-at -1 --down-at -1
nn_start agent "$AGENT" --config "$NN_TMP/agent.yml"
nn_check "webhook receiver up" nn_wait_http "http://127.0.0.1:$hport/"
for p in $am1 $am2 $p1 $p2 $aport; do
  nn_check "127.0.0.1:$p ready" nn_wait_http "http://127.0.0.1:$p/-/ready"
done
nn_check "nines-fleet serves payments/api" nn_wait_http "http://127.0.0.1:$pay/metrics"

ha_check_cluster

# promql PORT QUERY [TIME]: the first value of an instant query, or nothing.
promql() {
  curl -fsS "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" \
    ${3:+--data-urlencode "time=$3"} 2>/dev/null |
    python3 -c 'import json,sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}
# log_lines PORT START END: log lines of payments/api in [START, END) (Unix seconds).
log_lines() {
  curl -fsS -G "http://127.0.0.1:$1/loki/api/v1/query_range" \
    --data-urlencode 'query={namespace="payments",container="api"}' \
    --data-urlencode "start=$2" --data-urlencode "end=$3" --data-urlencode limit=1000000 \
    2>/dev/null | python3 -c 'import json,sys
print(sum(len(s["values"]) for s in json.load(sys.stdin)["data"]["result"]))' 2>/dev/null || true
}
fresh() { # PORT: the last few seconds of payments/api samples are in this aggregator
  local v
  v=$(promql "$1" 'count_over_time(up{job="fleet",project="payments"}[4s])')
  [ -n "$v" ] && [ "$v" -ge 2 ]
}
wait_fresh() {
  for _ in $(seq 50); do fresh "$1" && return 0; sleep 0.2; done
  return 1
}
nn_check "the agent's scrapes reach aggregator 1" wait_fresh "$p1"
nn_check "the agent's scrapes reach aggregator 2" wait_fresh "$p2"

firing_count() {
  grep -c '"status": "firing".*HaAgentErrorRate' "$NN_TMP/hook.jsonl" 2>/dev/null || true
}
for _ in $(seq 160); do [ "$(firing_count)" -ge 1 ] && break; sleep 0.25; done
nn_check "the incident reached the webhook" [ "$(firing_count)" -ge 1 ]
first=$(date +%s)

ends_at() { ha_ends_at "$1" HaAgentErrorRate; }
e1_before=$(ends_at "$am1")
e2_before=$(ends_at "$am2")
echo "endsAt before the kill: am1=$e1_before am2=$e2_before"
nn_check "the alert is active in both Alertmanagers" test -n "$e1_before" -a -n "$e2_before"

# Alertmanagers an aggregator has sent alerts to (sent counter above 0).
sent_to() {
  curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk '/^nines_notifications_sent_total\{/ && $NF > 0 { n++ } END { print n + 0 }'
}
nn_check "aggregator 1 sends the alert to both Alertmanagers" [ "$(sent_to "$p1")" -eq 2 ]
nn_check "aggregator 2 sends the alert to both Alertmanagers" [ "$(sent_to "$p2")" -eq 2 ]

# Agent counters for one destination of one pipeline (metrics or logs).
ship() { # METRIC SOURCE DEST
  curl -fsS "http://127.0.0.1:$aport/metrics" 2>/dev/null |
    awk -v re="^nines_agent_ship_$1\\\\{source=\"$2\",destination=\"$3\"" \
      '$0 ~ re { s += $NF } END { printf "%.0f\n", s }'
}
sent2_before=$(ship batches_sent_total metrics agg2)
lsent2_before=$(ship batches_sent_total logs agg2)

sleep 1
{
  kill -9 "$PID_agg1"
  wait "$PID_agg1" || true
} 2>/dev/null
kill_t=$(date +%s)
echo "killed aggregator 1 (pid $PID_agg1) with SIGKILL"
gap=0 stale=0 held=0
for ((i = 0; i < OUTAGE; i++)); do
  for p in $am1 $am2; do
    if [ -z "$(ends_at "$p")" ]; then
      gap=1
      echo "the alert was not active in 127.0.0.1:$p at +${i}s"
    fi
  done
  fresh "$p2" || { stale=1; echo "aggregator 2 had no fresh samples at +${i}s"; }
  # The dead destination's batches wait in the agent: in memory, then in the disk spool.
  q=$(($(ship queue_bytes metrics agg1) + $(ship spool_bytes metrics agg1)))
  [ "$q" -gt "$held" ] && held=$q
  sleep 1
done
nn_check "no gap: the alert stayed active in both Alertmanagers for $OUTAGE s after the kill" \
  [ "$gap" -eq 0 ]
e1_after=$(ends_at "$am1")
e2_after=$(ends_at "$am2")
echo "endsAt $OUTAGE s after the kill: am1=$e1_after am2=$e2_after"
nn_check "endsAt moved forward in am1" later "$e1_after" "$e1_before"
nn_check "endsAt moved forward in am2" later "$e2_after" "$e2_before"
nn_check "aggregator 2 had fresh samples every second of the outage" [ "$stale" -eq 0 ]
sent2_after=$(ship batches_sent_total metrics agg2)
lsent2_after=$(ship batches_sent_total logs agg2)
spool1=$(ship spool_bytes metrics agg1) lspool1=$(ship spool_bytes logs agg1)
fail1=$(ship batches_failed_total metrics agg1)
fails2=$(ship backoff_failures metrics agg2)
echo "agent during the outage: agg2 metrics batches $sent2_before -> $sent2_after, logs" \
  "$lsent2_before -> $lsent2_after; agg1 held up to $held metric bytes, spool now" \
  "$spool1 (metrics) $lspool1 (logs) bytes, $fail1 failed requests"
nn_check "the agent kept sending metrics to aggregator 2" [ "$sent2_after" -gt $((sent2_before + OUTAGE / 2)) ]
nn_check "the agent kept sending logs to aggregator 2" [ "$lsent2_after" -gt "$lsent2_before" ]
nn_check "aggregator 2's destination stayed healthy" [ "$fails2" -eq 0 ]
nn_check "the agent held aggregator 1's batches" [ "$held" -gt 0 ]
nn_check "the agent saw aggregator 1 fail" [ "$fail1" -gt 0 ]
n=$(firing_count)
echo "firing notifications for the incident: $n (in $(($(date +%s) - first)) s after the first)"
nn_check "exactly one notification reached the webhook" [ "$n" -eq 1 ]

# Aggregator 1 comes back and catches up from the agent's spool: for the outage window it must
# end up with exactly the samples and log lines aggregator 2 has.
nn_start agg1b "$AGG" --config "$NN_TMP/agg1.yml"
nn_check "aggregator 1 restarted" nn_wait_http "http://127.0.0.1:$p1/-/ready"
back_t=$(date +%s)
w0=$((kill_t - 3)) w1=$((back_t + 1)) # a window that spans the outage
win=$((w1 - w0))
q="count_over_time(up{job=\"fleet\",project=\"payments\"}[${win}s])"
sleep 1
caught_up() {
  local a b
  a=$(promql "$p1" "$q" "$w1") b=$(promql "$p2" "$q" "$w1")
  [ -n "$a" ] && [ "$a" = "$b" ] || return 1
  a=$(log_lines "$p1" "$w0" "$w1") b=$(log_lines "$p2" "$w0" "$w1")
  [ -n "$a" ] && [ "$a" = "$b" ]
}
# The agent retries a dead destination with full-jitter backoff (1 s doubling, capped at 60 s),
# so its next attempt may come up to a minute after the restart.
for ((i = 0; i < 130; i++)); do caught_up && break; sleep 0.5; done
caught=$(($(date +%s) - back_t))
s1=$(promql "$p1" "$q" "$w1") s2=$(promql "$p2" "$q" "$w1")
l1=$(log_lines "$p1" "$w0" "$w1") l2=$(log_lines "$p2" "$w0" "$w1")
echo "outage window ${win} s: payments/api up samples agg1=$s1 agg2=$s2, log lines agg1=$l1" \
  "agg2=$l2 (caught up ${caught} s after the restart)"
same() { [ -n "$1" ] && [ "$1" != 0 ] && [ "$1" = "$2" ]; }
# What nines-fleet wrote to payments/api's log in the window (by CRI timestamp, which the agent
# keeps as the entry's time).
lf=$(python3 - "$w0" "$w1" "$NN_TMP"/containers/payments-api-*_payments_api-*.log <<'PY'
import datetime, sys
lo, hi, n = int(sys.argv[1]), int(sys.argv[2]), 0
for path in sys.argv[3:]:
    for line in open(path, errors="replace"):
        ts = line.split(" ", 1)[0]
        t = datetime.datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=datetime.timezone.utc).timestamp() + float("0" + ts[19:-1])
        n += lo <= t < hi
print(n)
PY
)
echo "log lines nines-fleet wrote for payments/api in the window: $lf"
nn_check "aggregator 2 has every log line of the window" same "$l2" "$lf"
nn_check "aggregator 2 has a sample every second of the window" [ "${s2:-0}" -ge $((win - 2)) ]
nn_check "aggregator 1 caught up: the same samples as aggregator 2" same "$s1" "$s2"
nn_check "aggregator 1 caught up: the same log lines as aggregator 2" same "$l1" "$l2"
drained() {
  local i
  for ((i = 0; i < 50; i++)); do
    [ "$(($(ship spool_bytes metrics agg1) + $(ship spool_bytes logs agg1)))" -eq 0 ] && return 0
    sleep 0.2
  done
  echo "spool bytes for aggregator 1: metrics $(ship spool_bytes metrics agg1), logs $(ship spool_bytes logs agg1)"
  return 1
}
nn_check "the agent's spool for aggregator 1 drained" drained
dropped=$(curl -fsS "http://127.0.0.1:$aport/metrics" |
  awk '/^nines_agent_ship_(records_dropped|batches_deadlettered)_total/ { s += $NF } END { print s + 0 }')
nn_check "the agent dropped nothing" [ "$dropped" -eq 0 ]
resent() {
  for _ in $(seq 30); do [ "$(sent_to "$p1")" -eq 2 ] && return 0; sleep 0.2; done
  return 1
}
nn_check "the restarted aggregator 1 sends the alert to both Alertmanagers again" resent
for p in $am1 $am2; do
  nn_check "the alert is still active in 127.0.0.1:$p" test -n "$(ends_at "$p")"
done
n=$(firing_count)
echo "firing notifications at the end: $n; webhook lines: $(wc -l <"$NN_TMP/hook.jsonl")"
nn_check "still exactly one notification" [ "$n" -eq 1 ]
nn_check "nothing else reached the webhook (no resolution)" [ "$(wc -l <"$NN_TMP/hook.jsonl")" -eq 1 ]
nn_check "aggregator 2 is still up" kill -0 "$PID_agg2"
nn_finish
