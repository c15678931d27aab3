#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# alerts/alertmanager.yml does what it says: amtool accepts it; pages go to PagerDuty and
# Slack, tickets to Slack only (amtool's route test); and in a real Alertmanager 0.25 loaded
# with it, a firing page inhibits the ticket of the same SLO (and a generic HighErrorRate
# ticket of the same service) but not the ticket of another SLO.
source "$(dirname "$0")/lib.inc"
AM=/usr/bin/prometheus-alertmanager
CFG=$NN_SOURCE_DIR/alerts/alertmanager.yml
if [ ! -x "$AM" ] || ! command -v amtool >/dev/null; then
  echo "SKIP: Alertmanager or amtool not installed"
  exit 77
fi

nn_check "amtool check-config accepts alerts/alertmanager.yml" amtool check-config "$CFG"
route() { amtool config routes test --config.file="$CFG" "$@" 2>/dev/null; }
nn_check "a page goes to PagerDuty and Slack (#incidents)" \
  [ "$(route severity=page sloth_id=a)" = "pagerduty-oncall,slack-incidents" ]
nn_check "a critical generic alert goes there too" \
  [ "$(route severity=critical alertname=TargetDown)" = "pagerduty-oncall,slack-incidents" ]
nn_check "a ticket goes to Slack (#slo-tickets) only" \
  [ "$(route severity=ticket sloth_id=a)" = "slack-tickets" ]
nn_check "anything else is dropped" [ "$(route severity=info)" = "blackhole" ]

port=$(nn_free_port)
URL=http://127.0.0.1:$port
nn_start am "$AM" --config.file="$CFG" --storage.path="$NN_TMP/am" \
  --web.listen-address="127.0.0.1:$port" --cluster.listen-address=
nn_check "Alertmanager starts with the config" nn_wait_http "$URL/-/ready"

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
later=$(date -u -d '+10 min' +%Y-%m-%dT%H:%M:%SZ)
a() { # alertname severity sloth_id service
  printf '{"labels":{"alertname":"%s","severity":"%s","sloth_id":"%s","sloth_service":"%s","project":"p","service":"%s"},"startsAt":"%s","endsAt":"%s"}' \
    "$1" "$2" "$3" "$4" "$4" "$now" "$later"
}
body="[$(a PayBurn page pay-avail pay),$(a PayBurn ticket pay-avail pay),$(a PayLatency ticket pay-lat pay),$(a HighErrorRate ticket '' pay),$(a SearchBurn ticket search-avail search)]"
# The generic HighErrorRate ticket has no sloth_id: drop the empty label.
body=${body//\"sloth_id\":\"\",/}
nn_check "the five alerts are accepted" curl -fsS -o /dev/null -H 'Content-Type: application/json' \
  -d "$body" "$URL/api/v2/alerts"

state() { # alertname severity -> "active" / "suppressed"
  curl -fsS "$URL/api/v2/alerts?active=true&inhibited=true&silenced=true&unprocessed=true" |
    python3 -c 'import json,sys
n, s = sys.argv[1], sys.argv[2]
for a in json.load(sys.stdin):
    if a["labels"]["alertname"] == n and a["labels"]["severity"] == s:
        print(a["status"]["state"] + (":inhibited" if a["status"]["inhibitedBy"] else ""))' "$1" "$2"
}
for _ in $(seq 50); do [ "$(state PayBurn ticket)" = "suppressed:inhibited" ] && break; sleep 0.2; done
nn_check "the page of an SLO inhibits its ticket" [ "$(state PayBurn ticket)" = "suppressed:inhibited" ]
nn_check "the page itself stays active" [ "$(state PayBurn page)" = "active" ]
nn_check "the page inhibits the generic HighErrorRate ticket of its service" \
  [ "$(state HighErrorRate ticket)" = "suppressed:inhibited" ]
nn_check "another SLO's ticket of the same service is not inhibited" \
  [ "$(state PayLatency ticket)" = "active" ]
nn_check "a ticket of another service is not inhibited" [ "$(state SearchBurn ticket)" = "active" ]
nn_finish
