#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Alerting end to end: a real Alertmanager 0.25 with a webhook receiver, one aggregator with
# two SLOs (99.9% availability) and one alerting rule, and a remote-write generator. A 20% 5xx
# spike must page within two evaluation intervals of the data that crosses the page threshold
# (latency printed); a trickle at 1.5x budget burn must not page (its ticket goes pending and
# waits its 5-minute minimum); when the spike stops, the rule's alert resolves in Alertmanager
# and the webhook gets a resolved notification.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
AM=/usr/bin/prometheus-alertmanager
IV=5 # seconds: SLO and rule evaluation interval

for b in "$AM" /usr/bin/amtool "$AGG"; do
  if [ ! -x "$b" ]; then
    echo "SKIP: $b not installed"
    exit 0
  fi
done

amport=$(nn_free_port)
hport=$(nn_free_port)
port=$(nn_free_port)
AMURL=http://127.0.0.1:$amport

cat >"$NN_TMP/am.yml" <<YML
route:
  receiver: hook
  group_by: [alertname, sloth_id]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$hport/
        send_resolved: true
YML
cat >"$NN_TMP/slo.yml" <<'YML'
version: nines/v1
project: e2e
period: 30d
slos:
  - name: availability
    service: spike
    objective: 99.9
    sli: {availability: {metric: http_requests_total, selector: '{job="spike"}', code_label: code}}
    alerting:
      name: SpikeBudgetBurn
      page_alert: {labels: {severity: page}}
      ticket_alert: {labels: {severity: ticket}}
      no_data_alert: {disable: true}
      budget_alert: {disable: true}
  - name: availability
    service: trickle
    objective: 99.9
    sli: {availability: {metric: http_requests_total, selector: '{job="trickle"}', code_label: code}}
    alerting:
      name: TrickleBudgetBurn
      page_alert: {labels: {severity: page}}
      ticket_alert: {labels: {severity: ticket}}
      no_data_alert: {disable: true}
      budget_alert: {disable: true}
YML
cat >"$NN_TMP/rules.yml" <<'YML'
groups:
  - name: e2e
    rules:
      - alert: SpikeErrorRate
        expr: sum(rate(http_requests_total{job="spike",code=~"5.."}[10s])) / sum(rate(http_requests_total{job="spike"}[10s])) > 0.05
        labels: {severity: critical}
        annotations: {summary: "spike job errors at {{ $value }}"}
YML
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/agg
storage: {wal_fsync: false}
rules:
  rule_files: [$NN_TMP/rules.yml]
  evaluation_interval: ${IV}s
  resend_delay: ${IV}s
slo:
  spec_files: [$NN_TMP/slo.yml]
  evaluation_interval: ${IV}s
  resend_delay: ${IV}s
alerting:
  alertmanagers: [{url: "$AMURL"}]
YML

nn_start webhook python3 "$NN_SOURCE_DIR/tests/e2e/webhook.py" "$hport" "$NN_TMP/hook.jsonl"
nn_start am "$AM" --config.file="$NN_TMP/am.yml" --storage.path="$NN_TMP/am" \
  --web.listen-address="127.0.0.1:$amport" --cluster.listen-address=
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_check "webhook receiver up" nn_wait_http "http://127.0.0.1:$hport/"
nn_check "alertmanager ready" nn_wait_http "$AMURL/-/ready"
nn_check "aggregator ready" nn_wait_http "http://127.0.0.1:$port/-/ready"

# spike: 100 req/s, 20% 5xx from +15 s for 30 s; trickle: 2000 req/s at 0.15% 5xx (1.5x burn).
SPIKE_AT=15 SPIKE_FOR=30 LIVE=75
nn_start spike /usr/bin/python3 "$NN_SOURCE_DIR/tests/e2e/spike.py" --history 30 \
  --spike-at $SPIKE_AT --spike-for $SPIKE_FOR --seconds $LIVE \
  --job spike:100:0:0.2 --job trickle:2000:0.0015 "http://127.0.0.1:$port/api/v1/write"
ev() { awk -v e="$1" -v j="$2" '$1 == e && (j == "" || $2 == j) { print $NF; exit }' "$NN_TMP/spike.log"; }

# amtool's view of active alerts matching the given matchers, as JSON.
amq() { amtool --alertmanager.url="$AMURL" alert query -o json "$@" 2>/dev/null || echo '[]'; }
# Number of alerts in amtool's JSON (no python in the polling loop: it must stay fast).
count() { grep -o '"fingerprint"' | wc -l; }

page_seen=""
deadline=$((SECONDS + SPIKE_AT + SPIKE_FOR + 10))
while [ $SECONDS -lt $deadline ]; do
  if [ -z "$page_seen" ] && [ "$(amq alertname=SpikeBudgetBurn severity=page | count)" -ge 1 ]; then
    page_seen=$(date +%s.%N)
  fi
  [ -n "$page_seen" ] && [ -n "$(ev spike_end spike)" ] && break
  sleep 0.1
done
cross=$(ev cross spike)
start=$(ev spike_start spike)
nn_check "the generator saw its spike cross the page threshold" test -n "$cross"
nn_check "a severity=page alert for the spike SLO appeared in Alertmanager" test -n "$page_seen"
if [ -n "$cross" ] && [ -n "$page_seen" ]; then
  lat=$(python3 -c "print('%.2f' % ($page_seen - $cross))")
  lat0=$(python3 -c "print('%.2f' % ($page_seen - $start))")
  echo "page latency: ${lat}s after the crossing data was acknowledged (${lat0}s after the spike started; evaluation interval ${IV}s)"
  nn_check "page within 2 evaluation intervals of the crossing data (${lat}s <= $((2 * IV))s)" \
    python3 -c "import sys; sys.exit(0 if $lat <= 2 * $IV else 1)"
fi
page_json=$(amq alertname=SpikeBudgetBurn severity=page)
echo "page startsAt (the evaluation that fired it): $(grep -o '"startsAt": *"[^"]*"' <<<"$page_json" | head -1)"
nn_check "the page carries the SLO's labels" grep -q '"sloth_slo": *"availability"' <<<"$page_json"
nn_check "the rule alert SpikeErrorRate fired too" \
  bash -c "grep -q 'SpikeErrorRate' '$NN_TMP/hook.jsonl'"

# The trickle burns 1.5x: above the slow ticket tier (1x over 3d and 6h), under every other.
nn_check "the trickle SLO never paged (Alertmanager)" [ "$(amq alertname=TrickleBudgetBurn severity=page | count)" -eq 0 ]
nn_check "the trickle SLO never paged (webhook)" bash -c "! grep -q TrickleBudgetBurn '$NN_TMP/hook.jsonl'"
q='ALERTS{alertname="TrickleBudgetBurn"}'
tick=$(curl -fsS "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=$q")
echo "trickle ALERTS: $tick"
nn_check "the trickle SLO has its ticket pending (5-minute minimum before it notifies)" \
  python3 -c 'import json,sys
r=json.loads(sys.argv[1])["data"]["result"]
sev={(s["metric"].get("sloth_severity"), s["metric"].get("alertstate")) for s in r}
sys.exit(0 if ("ticket","pending") in sev and not any(s=="page" for s,_ in sev) else 1)' "$tick"
slos=$(curl -fsS "http://127.0.0.1:$port/api/v1/slos")
nn_check "the trickle SLO's 1h burn rate is about 1.5" python3 -c 'import json,sys
d={s["id"]: s for s in json.loads(sys.argv[1])["data"]["slos"]}
b=d["trickle-availability"]["burn_rates"]["1h"]; print("trickle 1h burn", b)
sys.exit(0 if 1.2 < b < 1.8 else 1)' "$slos"

# Resolution: the spike stopped; the 10s-window rule recovers within a few intervals.
resolved=""
deadline=$((SECONDS + 8 * IV))
while [ $SECONDS -lt $deadline ]; do
  if [ "$(amq alertname=SpikeErrorRate | count)" -eq 0 ] &&
    grep -q '"status": "resolved".*SpikeErrorRate\|SpikeErrorRate.*"status": "resolved"' "$NN_TMP/hook.jsonl"; then
    resolved=$(date +%s.%N)
    break
  fi
  sleep 0.5
done
nn_check "SpikeErrorRate left Alertmanager's active alerts and the webhook got 'resolved'" test -n "$resolved"
if [ -n "$resolved" ]; then
  echo "resolved ${resolved%.*}: $(python3 -c "print('%.1f' % ($resolved - $(ev spike_end spike)))")s after the spike ended"
fi
nn_check "the resolved alert's endsAt is in the past" python3 - "$AMURL" <<'PY'
import json, sys, urllib.request, datetime
a = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v2/alerts?active=false&resolved=true&inhibited=true&silenced=true&unprocessed=true"))
# The resolved alert may already be gone from the API; then the webhook's copy is checked.
al = [x for x in a if x["labels"].get("alertname") == "SpikeErrorRate"]
if not al:
    sys.exit(0)
ends = datetime.datetime.fromisoformat(al[0]["endsAt"].replace("Z", "+00:00"))
sys.exit(0 if ends <= datetime.datetime.now(datetime.timezone.utc) else 1)
PY
nn_check "the webhook's resolved notification has endsAt in the past" python3 - "$NN_TMP/hook.jsonl" <<'PY'
import json, sys, datetime
for l in open(sys.argv[1]):
    m = json.loads(l)
    for a in m["alerts"]:
        if a["labels"].get("alertname") == "SpikeErrorRate" and a["status"] == "resolved":
            e = datetime.datetime.fromisoformat(a["endsAt"].replace("Z", "+00:00"))
            sys.exit(0 if e.timestamp() <= m["_received"] else 1)
sys.exit(1)
PY
nn_check "the generator ran without errors" bash -c "kill -0 $PID_spike 2>/dev/null || wait $PID_spike"
echo "notifications received: $(wc -l <"$NN_TMP/hook.jsonl")"
nn_finish
