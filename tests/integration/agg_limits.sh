#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Ingest status codes as PROTOCOLS.md §1.5 describes Prometheus's receiver, plus nines'
# own limits and access rules: 204 stored, 415 unknown Content-Type or Content-Encoding,
# 400 with Prometheus's wording for out-of-order and duplicate samples, 429 with
# Retry-After past max_active_series, 401 without the bearer token or X-Scope-OrgID,
# 400 for a numeric Loki timestamp, and a resent Loki batch (same X-Nines-Batch-Id)
# acknowledged but stored once.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
PY=/usr/bin/python3 # Debian's, which has python3-snappy
GEN=$NN_SOURCE_DIR/tests/e2e/hostile.py

aport=$(nn_free_port)
bport=$(nn_free_port)
A=http://127.0.0.1:$aport
B=http://127.0.0.1:$bport
cat >"$NN_TMP/a.yml" <<YML
listen_address: 127.0.0.1:$aport
data_dir: $NN_TMP/a
ingest:
  max_active_series: 100
  retry_after_seconds: 7
YML
cat >"$NN_TMP/b.yml" <<YML
listen_address: 127.0.0.1:$bport
data_dir: $NN_TMP/b
ingest:
  bearer_token: s3cret-token
  multi_tenancy: true
YML
nn_start a "$AGG" --config "$NN_TMP/a.yml"
nn_start b "$AGG" --config "$NN_TMP/b.yml"
nn_wait_http "$A/-/ready" 60
nn_wait_http "$B/-/ready" 60

now=$(($(date +%s) * 1000))
rw() { "$PY" "$GEN" --rw "$NN_TMP/$1" "${@:2}"; }

# post URL BODYFILE CURL_ARGS...: prints the status; the body goes to $NN_TMP/resp and the
# headers to $NN_TMP/hdr.
post() {
  local url=$1 body=$2
  shift 2
  curl -s -o "$NN_TMP/resp" -D "$NN_TMP/hdr" -w '%{http_code}' "$url" --data-binary @"$body" "$@"
}
PB=(-H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy'
  -H 'X-Prometheus-Remote-Write-Version: 0.1.0')

# status WANT DESC CURL_POST_ARGS...: one request must get WANT.
status() {
  local want=$1 desc=$2 got
  shift 2
  got=$(post "$@")
  [ "$got" = "$want" ] || echo "# $desc: got $got: $(head -c 200 "$NN_TMP/resp")"
  nn_check "$desc -> $want" [ "$got" = "$want" ]
}
body_has() { nn_check "$1" grep -qF -- "$2" "$NN_TMP/resp"; }

rw ok m_limits $((now - 5000)) 1.5
status 204 "valid remote write" "$A/api/v1/write" "$NN_TMP/ok" "${PB[@]}"
nn_check "204 has an empty body" [ ! -s "$NN_TMP/resp" ]
status 204 "valid remote write without any headers (as Prometheus accepts)" "$A/api/v1/write" \
  "$NN_TMP/ok" -H 'Content-Type:'
status 415 "Content-Type text/plain" "$A/api/v1/write" "$NN_TMP/ok" -H 'Content-Type: text/plain'
body_has "415 names the Content-Type" 'unsupported Content-Type "text/plain"'
status 415 "Content-Type of remote write 2.0 (not spoken)" "$A/api/v1/write" "$NN_TMP/ok" \
  -H 'Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request'
status 415 "Content-Encoding gzip" "$A/api/v1/write" "$NN_TMP/ok" \
  -H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: gzip'
body_has "415 names the Content-Encoding" 'unsupported Content-Encoding "gzip"'
status 415 "Loki push with Content-Encoding br" "$A/loki/api/v1/push" "$NN_TMP/ok" \
  -H 'Content-Type: application/json' -H 'Content-Encoding: br'
status 405 "GET on the write endpoint" "$A/api/v1/write" "$NN_TMP/ok" -X GET

rw older m_limits $((now - 6000)) 2
status 400 "an out-of-order sample" "$A/api/v1/write" "$NN_TMP/older" "${PB[@]}"
body_has "400 says 'out of order sample' as Prometheus does" "out of order sample"
rw dup m_limits $((now - 5000)) 2.5
status 400 "same timestamp, another value" "$A/api/v1/write" "$NN_TMP/dup" "${PB[@]}"
body_has "400 says 'duplicate sample for timestamp' as Prometheus does" "duplicate sample for timestamp"
status 204 "same timestamp, same value (a resend)" "$A/api/v1/write" "$NN_TMP/ok" "${PB[@]}"
v=$(curl -fsS "$A/api/v1/query" --data-urlencode 'query=m_limits[1m]' --data-urlencode "time=$((now / 1000))" |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["values"])')
nn_check "the refused samples did not change the stored one ($v)" [ "$v" = "[[$(((now - 5000) / 1000)), '1.5']]" ]

# max_active_series: 100 (one series exists already).
rw s99 m_many $((now - 4000)) 1 99
status 204 "99 more series reach the limit of 100" "$A/api/v1/write" "$NN_TMP/s99" "${PB[@]}"
rw s100 m_more $((now - 4000)) 1 1
status 429 "a series past max_active_series" "$A/api/v1/write" "$NN_TMP/s100" "${PB[@]}"
body_has "429 names the limit" "the limit of 100 active series is reached"
nn_check "429 carries Retry-After: 7" grep -qi '^Retry-After: 7' "$NN_TMP/hdr"
rw s99b m_many $((now - 3000)) 2 99
status 204 "existing series still take samples at the limit" "$A/api/v1/write" "$NN_TMP/s99b" "${PB[@]}"
n=$(curl -fsS "$A/api/v1/series" --data-urlencode 'match[]={__name__=~"m_.*"}' |
  "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')
nn_check "the refused series was not created ($n series)" [ "$n" = 100 ]

# Loki push rules.
printf '{"streams":[{"stream":{"job":"lim"},"values":[[%s,"numeric"]]}]}' "${now}000000" >"$NN_TMP/num.json"
status 400 "Loki push with a numeric timestamp" "$A/loki/api/v1/push" "$NN_TMP/num.json" \
  -H 'Content-Type: application/json'
body_has "400 says the timestamp must be a string" "timestamp must be a string"
printf '{"streams":[{"stream":{"job":"idem"},"values":[["%s","first"]]}]}' "${now}000000" >"$NN_TMP/b1.json"
printf '{"streams":[{"stream":{"job":"idem"},"values":[["%s","second"]]}]}' "$((now + 1))000000" >"$NN_TMP/b2.json"
status 204 "Loki batch with X-Nines-Batch-Id" "$A/loki/api/v1/push" "$NN_TMP/b1.json" \
  -H 'Content-Type: application/json' -H 'X-Nines-Batch-Id: batch-42'
status 204 "the same batch id again (a resend) is acknowledged" "$A/loki/api/v1/push" "$NN_TMP/b2.json" \
  -H 'Content-Type: application/json' -H 'X-Nines-Batch-Id: batch-42'
lines=$(curl -fsS "$A/loki/api/v1/query_range" --data-urlencode 'query={job="idem"}' --data-urlencode since=1h |
  "$PY" -c 'import json,sys; print([v[1] for s in json.load(sys.stdin)["data"]["result"] for v in s["values"]])')
nn_check "the batch is stored once ($lines)" [ "$lines" = "['first']" ]
nn_check "the resend is counted" \
  bash -c "curl -fsS '$A/metrics' | grep -q '^nines_ingest_push_batches_resent_total 1$'"

# Access: bearer token and tenants.
rw t m_tenant $((now - 2000)) 3
status 401 "no bearer token" "$B/api/v1/write" "$NN_TMP/t" "${PB[@]}" -H 'X-Scope-OrgID: team-a'
body_has "401 says what is missing" "bearer token"
status 401 "a wrong bearer token" "$B/api/v1/write" "$NN_TMP/t" "${PB[@]}" -H 'X-Scope-OrgID: team-a' \
  -H 'Authorization: Bearer s3cret-tokeX'
status 401 "a token that is a prefix of the right one" "$B/api/v1/write" "$NN_TMP/t" "${PB[@]}" \
  -H 'X-Scope-OrgID: team-a' -H 'Authorization: Bearer s3cret'
status 401 "the token but no X-Scope-OrgID" "$B/api/v1/write" "$NN_TMP/t" "${PB[@]}" \
  -H 'Authorization: Bearer s3cret-token'
body_has "401 asks for X-Scope-OrgID" "X-Scope-OrgID"
status 204 "the token and X-Scope-OrgID" "$B/api/v1/write" "$NN_TMP/t" "${PB[@]}" \
  -H 'Authorization: Bearer s3cret-token' -H 'X-Scope-OrgID: team-a'
status 401 "Loki push without the token" "$B/loki/api/v1/push" "$NN_TMP/b1.json" \
  -H 'Content-Type: application/json' -H 'X-Scope-OrgID: team-a'
status 204 "Loki push with the token and a tenant" "$B/loki/api/v1/push" "$NN_TMP/b1.json" \
  -H 'Content-Type: application/json' -H 'X-Scope-OrgID: team-a' -H 'Authorization: Bearer s3cret-token'
t=$(curl -fsS "$B/api/v1/series" --data-urlencode 'match[]=m_tenant' |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["data"][0].get("tenant"))')
nn_check "the series carries its tenant label ($t)" [ "$t" = team-a ]
nn_finish
