#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Log-derived metrics reach the aggregator as lines change them, not at the agent's next
# scrape of its own /metrics: that scrape runs every hour here (so it almost never runs during
# the test), yet each batch of access-log lines written to a CRI file must be counted in the
# aggregator, under the labels the scrape gives (job, instance), within a few seconds; pushed
# samples are counted on the agent's /metrics, and the values only grow.
source "$(dirname "$0")/lib.inc"
AGENT=$NN_BINARY_DIR/agent/nines-agent
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
aport=$(nn_free_port)
gport=$(nn_free_port)
G=http://127.0.0.1:$gport
mkdir -p "$NN_TMP/containers"
log=$NN_TMP/containers/web-7d9f00_shop_web-$(printf '%064d' 0 | tr 0 a).log
: >"$log"

cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$gport
data_dir: $NN_TMP/agg
storage: {wal_fsync: false}
YML
cat >"$NN_TMP/agent.yml" <<YML
listen_address: 127.0.0.1:$aport
data_dir: $NN_TMP/agent
logs:
  include: [$NN_TMP/containers/*.log]
  destinations: [{name: aggregator, url: "$G/loki/api/v1/push"}]
  metrics: {enabled: true, push_interval: 500ms}
scrape:
  scrape_interval: 1h
  scrape_timeout: 10s
  scrape_configs:
    - job_name: nines-agent
      static_configs: [{targets: ["127.0.0.1:$aport"]}]
remote_write:
  batch_wait: 5s
  destinations: [{name: aggregator, url: "$G/api/v1/write"}]
YML
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_check "aggregator ready" nn_wait_http "$G/-/ready"
nn_start agent "$AGENT" --config "$NN_TMP/agent.yml"
nn_check "agent ready" nn_wait_http "http://127.0.0.1:$aport/-/ready"

# write N STATUS: appends N access-log lines of that status.
write() {
  python3 - "$log" "$1" "$2" <<'PY'
import json, sys, time
path, n, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = time.time_ns()
ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + ".%09dZ" % (now % 10**9)
line = json.dumps({"service": "api", "method": "GET", "path": "/items", "status": status,
                   "duration_ms": 12})
with open(path, "a") as f:
    f.write("".join("%s stdout F %s\n" % (ts, line) for _ in range(n)))
PY
}

# counted STATUS WANT: the aggregator holds WANT for that status, with the scrape's labels,
# within 4 s (the batch_wait of remote write is 5 s: only the push's flush can be this fast).
counted() {
  local q i got
  q="nines_log_http_requests_total{job=\"nines-agent\",instance=\"127.0.0.1:$aport\",service=\"api\",status=\"$1\"}"
  for ((i = 0; i < 40; i++)); do
    got=$(curl -fsS --get "$G/api/v1/query" --data-urlencode "query=$q" |
      python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if len(r)==1 else "-")' 2>/dev/null) || got=-
    [ "$got" = "$2" ] && return 0
    sleep 0.1
  done
  echo "status $1: got $got, want $2"
  return 1
}

write 7 200
write 3 500
nn_check "the first lines are counted in the aggregator within 4 s" counted 500 3
nn_check "with their 200s" counted 200 7
write 5 500
nn_check "the next ones too, without a scrape" counted 500 8

nn_check "pushes are counted on the agent's /metrics" bash -c \
  "curl -fsS http://127.0.0.1:$aport/metrics | awk '/^nines_agent_log_metrics_pushes_total/ {exit !(\$2 >= 2)}'"
nn_check "the 5xx counter's samples only grow, in time order" bash -c "
  curl -fsS --get '$G/api/v1/query' --data-urlencode \
    'query=nines_log_http_requests_total{job=\"nines-agent\",status=\"500\"}[5m]' |
  python3 -c 'import json,sys
v=json.load(sys.stdin)[\"data\"][\"result\"][0][\"values\"]
ts=[float(t) for t,_ in v]; xs=[float(x) for _,x in v]
sys.exit(not (len(v) >= 2 and ts == sorted(set(ts)) and xs == sorted(xs) and xs[-1] == 8))'"
nn_finish
