#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# High availability: two Alertmanagers in one gossip cluster and two aggregators with the same
# rules and external labels, both receiving the same remote-write data and both sending to
# both Alertmanagers. The incident must reach the webhook exactly once. Then one aggregator
# is killed with SIGKILL while the alert fires: the alert must stay active in both
# Alertmanagers for longer than its validity (no gap) and its endsAt must keep moving forward,
# because the other aggregator keeps re-sending.
source "$(dirname "$0")/lib.inc"
source "$(dirname "$0")/ha.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
IV=5 # rule evaluation interval and resend delay: alerts are valid for 4 x 5 s = 20 s

for b in "$AM" "$AGG"; do
  if [ ! -x "$b" ]; then
    echo "SKIP: $b not installed"
    exit 0
  fi
done

hport=$(nn_free_port)
am1=$(nn_free_port) am2=$(nn_free_port) c1=$(nn_free_port) c2=$(nn_free_port)
p1=$(nn_free_port) p2=$(nn_free_port)

cat >"$NN_TMP/rules.yml" <<'YML'
groups:
  - name: ha
    rules:
      - alert: HaErrorRate
        expr: sum(rate(http_requests_total{job="ha",code=~"5.."}[10s])) / sum(rate(http_requests_total{job="ha"}[10s])) > 0.05
        labels: {severity: page}
YML
ha_configs 5s

ha_start_alertmanagers
nn_start agg1 "$AGG" --config "$NN_TMP/agg1.yml"
nn_start agg2 "$AGG" --config "$NN_TMP/agg2.yml"
nn_check "webhook receiver up" nn_wait_http "http://127.0.0.1:$hport/"
for p in $am1 $am2 $p1 $p2; do
  nn_check "127.0.0.1:$p ready" nn_wait_http "http://127.0.0.1:$p/-/ready"
done

ha_check_cluster

# The same data to both aggregators: 100 req/s, 20% 5xx from +5 s until the end (90 s).
nn_start spike /usr/bin/python3 "$NN_SOURCE_DIR/tests/e2e/spike.py" --history 20 --spike-at 5 \
  --spike-for 1000 --seconds 90 --keep-going --job ha:100:0:0.2 \
  "http://127.0.0.1:$p1/api/v1/write" "http://127.0.0.1:$p2/api/v1/write"

firing_count() {
  grep -c '"status": "firing".*HaErrorRate' "$NN_TMP/hook.jsonl" 2>/dev/null || true
}
for _ in $(seq 120); do [ "$(firing_count)" -ge 1 ] && break; sleep 0.25; done
nn_check "the incident reached the webhook" [ "$(firing_count)" -ge 1 ]
first=$(date +%s)

ends_at() { ha_ends_at "$1" HaErrorRate; }
e1_before=$(ends_at "$am1")
e2_before=$(ends_at "$am2")
echo "endsAt before the kill: am1=$e1_before am2=$e2_before"
nn_check "the alert is active in both Alertmanagers" test -n "$e1_before" -a -n "$e2_before"

sleep 2
kill -9 "$PID_agg1"
echo "killed aggregator 1 (pid $PID_agg1) with SIGKILL"
gap=0
for ((i = 0; i < 30; i++)); do # 30 s, more than the 20 s an alert stays valid without a resend
  for p in $am1 $am2; do
    if [ -z "$(ends_at "$p")" ]; then
      gap=1
      echo "the alert was not active in 127.0.0.1:$p at +${i}s"
    fi
  done
  sleep 1
done
nn_check "no gap: the alert stayed active in both Alertmanagers for 30 s after the kill" [ "$gap" -eq 0 ]
e1_after=$(ends_at "$am1")
e2_after=$(ends_at "$am2")
echo "endsAt 30 s after the kill: am1=$e1_after am2=$e2_after"
nn_check "endsAt moved forward in am1" later "$e1_after" "$e1_before"
nn_check "endsAt moved forward in am2" later "$e2_after" "$e2_before"

# Dedup: by now both Alertmanagers' peer timeouts and several group intervals have passed.
n=$(firing_count)
echo "firing notifications for the incident: $n (in $(($(date +%s) - first)) s after the first)"
nn_check "exactly one notification reached the webhook" [ "$n" -eq 1 ]
nn_check "nothing else reached the webhook" [ "$(wc -l <"$NN_TMP/hook.jsonl")" -eq 1 ]
nn_check "aggregator 2 is still up" kill -0 "$PID_agg2"
nn_finish
