#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Rule files in the running aggregator: the same files pass `promtool check rules`; a group's
# interval and limit, a recording rule and an alerting rule with templated labels and
# annotations show up in /api/v1/rules and /api/v1/alerts in Prometheus's shape (with ALERTS
# and ALERTS_FOR_STATE in the store); the files reload on SIGHUP and on POST /-/reload; a
# broken file is refused (500) and the previous rules stay; GET /-/reload is 405. Last, a
# pending alert's `for` state survives a restart of the process (from ALERTS_FOR_STATE).
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
port=$(nn_free_port)
URL=http://127.0.0.1:$port
R=$NN_TMP/rules.yml

v1() {
  cat >"$R" <<'YML'
groups:
  - name: first
    interval: 1s
    limit: 10
    rules:
      - record: job:one:sum
        expr: sum(vector(1))
      - alert: AlwaysOne
        expr: label_replace(vector(1234567), "instance", "h1", "", "")
        for: 2s
        keep_firing_for: 5s
        labels: {severity: ticket, team: "{{ $value | humanize }}"}
        annotations:
          summary: 'value {{ $value }} is {{ humanize $value }}'
          description: 'on {{ $labels.instance }} for {{ 3600 | humanizeDuration }}'
YML
}
v2() {
  cat >"$R" <<'YML'
groups:
  - name: second
    interval: 1s
    rules:
      - alert: AfterHup
        expr: vector(2)
        labels: {severity: ticket}
YML
}
v3() {
  cat >"$R" <<'YML'
groups:
  - name: third
    interval: 1s
    rules:
      - alert: AfterPost
        expr: vector(3)
        labels: {severity: ticket}
YML
}

for v in v1 v2 v3; do
  $v
  nn_check "promtool check rules accepts rule file $v" promtool check rules "$R"
done
v1
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/agg
storage: {wal_fsync: false}
rules: {rule_files: ['$R'], evaluation_interval: 1s, for_grace_period: 1s}
golden_signals: {enabled: false}
YML
nn_check "--check-config accepts the config" "$AGG" --config "$NN_TMP/agg.yml" --check-config
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_check "aggregator ready" nn_wait_http "$URL/-/ready"

# py EXPR: evaluates a Python predicate over the JSON of $URL$2 (bound to j); polls for 10 s.
poll() {
  local pred=$1 path=$2 i
  for ((i = 0; i < 50; i++)); do
    curl -fsS "$URL$path" >"$NN_TMP/last.json" 2>/dev/null &&
      python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($pred) else 1)" \
        "$NN_TMP/last.json" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "last answer of $path: $(head -c 1500 "$NN_TMP/last.json")"
  return 1
}
groups='[g["name"] for g in j["data"]["groups"]]'
nn_check "/api/v1/rules: group first with interval 1s and limit 10, both rules healthy" poll \
  'j["status"] == "success" and [(g["name"], g["interval"], g.get("limit"), [(r["type"], r["name"], r["health"]) for r in g["rules"]]) for g in j["data"]["groups"]] == [("first", 1, 10, [("recording", "job:one:sum", "ok"), ("alerting", "AlwaysOne", "ok")])]' \
  /api/v1/rules
nn_check "/api/v1/rules: the alerting rule has for, keep_firing_for and fires after 2 s" poll \
  'any(r["name"] == "AlwaysOne" and r["duration"] == 2 and r.get("keepFiringFor") == 5 and r["state"] == "firing" and len(r["alerts"]) == 1 for g in j["data"]["groups"] for r in g["rules"])' \
  /api/v1/rules
nn_check "/api/v1/alerts: labels and annotations templated" poll \
  'j["status"] == "success" and [(a["labels"]["alertname"], a["labels"]["instance"], a["labels"]["team"], a["state"], a["annotations"]["summary"], a["annotations"]["description"], a["value"]) for a in j["data"]["alerts"]] == [("AlwaysOne", "h1", "1.235M", "firing", "value 1.234567e+06 is 1.235M", "on h1 for 1h 0m 0s", "1.234567e+06")]' \
  /api/v1/alerts
nn_check "ALERTS, ALERTS_FOR_STATE and the recording rule's series are in the store" poll \
  'sorted(r["metric"]["__name__"] for r in j["data"]["result"]) == ["ALERTS", "ALERTS_FOR_STATE", "job:one:sum"]' \
  '/api/v1/query?query=%7B__name__%3D~%22ALERTS%7CALERTS_FOR_STATE%7Cjob%3Aone%3Asum%22%7D'

v2
kill -HUP "$PID_agg"
nn_check "SIGHUP: the new file's group replaces the old one" poll "$groups == ['second']" /api/v1/rules
nn_check "SIGHUP: its alert fires" poll \
  '[a["labels"]["alertname"] for a in j["data"]["alerts"]] == ["AfterHup"]' /api/v1/alerts

v3
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/-/reload")
nn_check "POST /-/reload answers 200 (got $code)" [ "$code" = 200 ]
nn_check "POST /-/reload: the new file's group replaces the old one" poll "$groups == ['third']" \
  /api/v1/rules

printf 'groups:\n  - name: broken\n    rules:\n      - alert: X\n        expr: sum(\n' >"$R"
nn_check "promtool refuses the broken file too" bash -c "! promtool check rules '$R' >/dev/null 2>&1"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/-/reload")
nn_check "POST /-/reload of a broken file answers 500 (got $code)" [ "$code" = 500 ]
nn_check "the previous rules stay after a failed reload" poll "$groups == ['third']" /api/v1/rules
kill -HUP "$PID_agg"
sleep 1
nn_check "the aggregator survives a SIGHUP with a broken file" kill -0 "$PID_agg"
nn_check "... and keeps the previous rules" poll "$groups == ['third']" /api/v1/rules
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/-/reload")
nn_check "GET /-/reload is refused with 405 (got $code)" [ "$code" = 405 ]

printf 'groups:\n  - name: held\n    interval: 1s\n    rules:\n      - alert: Held\n        expr: vector(1)\n        for: 10m\n' >"$R"
curl -fsS -o /dev/null -X POST "$URL/-/reload"
pending='[(a["labels"]["alertname"], a["state"]) for a in j["data"]["alerts"]] == [("Held", "pending")]'
nn_check "the 10m alert is pending" poll "$pending" /api/v1/alerts
before=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["alerts"][0]["activeAt"])' "$NN_TMP/last.json")
sleep 5
kill -TERM "$PID_agg"
wait "$PID_agg" || true
restart=$(date +%s.%N)
nn_start agg2 "$AGG" --config "$NN_TMP/agg.yml"
nn_check "aggregator ready after the restart" nn_wait_http "$URL/-/ready"
nn_check "the alert is pending again" poll "$pending" /api/v1/alerts
after=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["alerts"][0]["activeAt"])' "$NN_TMP/last.json")
echo "activeAt before the restart $before, after $after (restarted at $restart)"
# Prometheus's restore: activeAt moves forward by the downtime (about 1-2 s here), so it stays
# before the restart; a state that was not restored would start after it.
nn_check "for state restored: activeAt predates the restart" python3 -c '
import datetime, sys
p = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
b, a, r = p(sys.argv[1]), p(sys.argv[2]), float(sys.argv[3])
sys.exit(0 if b <= a < r else 1)' "$before" "$after" "$restart"
nn_finish
