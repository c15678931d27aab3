#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Remote-write metric metadata: a metadata-only WriteRequest (as Prometheus sends every
# minute) is stored and served by /api/v1/metadata with Prometheus's shape and parameters,
# per tenant with multi-tenancy, and survives a restart; nines-agent sends the metadata of
# what it scrapes.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
port=$(nn_free_port)
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/agg
ingest:
  multi_tenancy: true
YML
api=http://127.0.0.1:$port/api/v1

# WriteRequest{metadata: [...]}: a hand-encoded protobuf, zstd-compressed.
mkreq() { # OUT TYPE FAMILY HELP UNIT ...
  local out=$1
  shift
  python3 - "$@" >"$out.pb" <<'PY'
import sys
def v(x):
    o = b""
    while x >= 0x80:
        o += bytes([x & 0x7F | 0x80]); x >>= 7
    return o + bytes([x])
def s(f, b): return v(f << 3 | 2) + v(len(b)) + b
a, req = sys.argv[1:], b""
for i in range(0, len(a), 4):
    m = v(1 << 3) + v(int(a[i])) + s(2, a[i+1].encode()) + s(4, a[i+2].encode()) + s(5, a[i+3].encode())
    req += s(3, m)
sys.stdout.buffer.write(req)
PY
  zstd -q -f "$out.pb" -o "$out"
}
post() { # FILE TENANT
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Encoding: zstd' \
    -H 'Content-Type: application/x-protobuf' -H "X-Scope-OrgID: $2" --data-binary "@$1" "$api/write"
}
get() { curl -s "$@"; }

mkreq "$NN_TMP/a.zst" 1 http_requests_total "Requests served." "" \
  3 http_request_duration_seconds "Request latency." seconds 2 up "Target up." ""
mkreq "$NN_TMP/b.zst" 2 up "Target is up (tenant b)." ""

nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_wait_http "http://127.0.0.1:$port/-/ready"
nn_check "metadata-only write request from tenant a answers 204" [ "$(post "$NN_TMP/a.zst" a)" = 204 ]
nn_check "metadata-only write request from tenant b answers 204" [ "$(post "$NN_TMP/b.zst" b)" = 204 ]

all=$(get "$api/metadata")
want_a='{"status":"success","data":{"http_request_duration_seconds":[{"type":"histogram","help":"Request latency.","unit":"seconds"}],"http_requests_total":[{"type":"counter","help":"Requests served.","unit":""}],"up":[{"type":"gauge","help":"Target up.","unit":""}]}}'
nn_check "tenant a sees its metadata in Prometheus's shape" \
  [ "$(get -H 'X-Scope-OrgID: a' "$api/metadata")" = "$want_a" ]
nn_check "without a tenant, up lists both tenants' entries" \
  [ "$(get "$api/metadata?metric=up")" = '{"status":"success","data":{"up":[{"type":"gauge","help":"Target up.","unit":""},{"type":"gauge","help":"Target is up (tenant b).","unit":""}]}}' ]
nn_check "limit_per_metric=1 keeps one entry" \
  [ "$(get "$api/metadata?metric=up&limit_per_metric=1")" = '{"status":"success","data":{"up":[{"type":"gauge","help":"Target up.","unit":""}]}}' ]
nn_check "limit=1 keeps one metric" \
  bash -c "curl -s '$api/metadata?limit=1' | python3 -c 'import json,sys; d=json.load(sys.stdin)[\"data\"]; sys.exit(0 if list(d)==[\"http_request_duration_seconds\"] else 1)'"
nn_check "POST form works too" \
  [ "$(curl -s -d metric=http_requests_total "$api/metadata")" = '{"status":"success","data":{"http_requests_total":[{"type":"counter","help":"Requests served.","unit":""}]}}' ]
code=$(curl -s -o "$NN_TMP/bad.json" -w '%{http_code}' "$api/metadata?limit=abc")
nn_check "limit=abc is 400 bad_data 'limit must be a number'" \
  bash -c "[ $code = 400 ] && grep -q '\"errorType\":\"bad_data\",\"error\":\"limit must be a number\"' '$NN_TMP/bad.json'"

nn_check "/metrics counts the stored entries" bash -c \
  "curl -s http://127.0.0.1:$port/metrics | grep -qx 'nines_metadata_entries 4'"

# A restart keeps what was stored.
kill "$PID_agg"
wait "$PID_agg" || true
nn_check "the metadata file is written at shutdown" [ -s "$NN_TMP/agg/metadata" ]
nn_start agg2 "$AGG" --config "$NN_TMP/agg.yml"
nn_wait_http "http://127.0.0.1:$port/-/ready"
nn_check "after a restart the same metadata is served" [ "$(get "$api/metadata")" = "$all" ]
nn_check "and it is not empty" [ "$all" != '{"status":"success","data":{}}' ]

# nines-agent scrapes a target and remote-writes its TYPE/HELP to a (single-tenant) aggregator.
p2=$(nn_free_port) gport=$(nn_free_port) agport=$(nn_free_port)
nn_start agg3 "$AGG" --listen-address "127.0.0.1:$p2" --data-dir "$NN_TMP/agg3"
nn_start gen /usr/bin/python3 "$NN_SOURCE_DIR/tests/e2e/scrape_target.py" gen --port "$gport"
nn_wait_http "http://127.0.0.1:$p2/-/ready"
nn_wait_http "http://127.0.0.1:$gport/metrics"
cat >"$NN_TMP/agent.yml" <<YML
listen_address: 127.0.0.1:$agport
data_dir: $NN_TMP/agent-data
logs: {enabled: false}
scrape:
  scrape_interval: 1s
  scrape_timeout: 500ms
  scrape_configs:
    - job_name: gen
      static_configs: [{targets: ['127.0.0.1:$gport']}]
remote_write:
  batch_wait: 200ms
  destinations: [{name: agg, url: 'http://127.0.0.1:$p2/api/v1/write', codec: zstd}]
YML
nn_start agent "$NN_BINARY_DIR/agent/nines-agent" --config "$NN_TMP/agent.yml"
agent_meta() {
  [ "$(curl -s "http://127.0.0.1:$p2/api/v1/metadata?metric=gen_latency_seconds")" = \
    '{"status":"success","data":{"gen_latency_seconds":[{"type":"histogram","help":"Request latency.","unit":""}]}}' ]
}
for _ in $(seq 50); do agent_meta && break; sleep 0.2; done
nn_check "the agent's scrape metadata reaches /api/v1/metadata" agent_meta
nn_check "and its counters are typed as such" bash -c \
  "curl -s 'http://127.0.0.1:$p2/api/v1/metadata?metric=gen_requests_total' | grep -q '\"type\":\"counter\"'"
nn_check "the agent's samples still arrive" bash -c \
  "curl -s 'http://127.0.0.1:$p2/api/v1/query?query=gen_constant' | grep -q '\"value\"'"
nn_finish
