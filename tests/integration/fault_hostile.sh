#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Hostile input, the part agg_hostile.sh does not cover (issue 9, fault suite): gzip bombs
# (gzip is not an accepted encoding: refused before a byte is inflated); the Loki push
# endpoint's own label handling (a million labels in one stream, a 1 MiB label value, label
# values and names that are not UTF-8, in protobuf and JSON, truncated protobuf and JSON, an
# oversized line); LogQL built to explode (9,000 and 20,000 pipeline stages, backtracking regexps,
# a 100-year range); and abuse at the HTTP level (tests/e2e/hostile_http.py): 1 MiB
# headers, 100,000 headers, a 1 MiB URL, broken and endless chunked bodies, a body shorter
# than its Content-Length, slowloris, an HTTP/2 preface followed by junk, 2,000 idle
# connections. Each gets a 4xx with a message (or, where no request could be parsed, the
# connection is closed) within its time bound; after each the server answers /-/healthy
# and its RSS stays under a cap.
#
# Decision documented here: a Loki JSON push whose label value is not UTF-8 is accepted and
# the invalid bytes become U+FFFD, as Loki's own JSON decoder (jsoniter) does; the protobuf
# push refuses it (400), as Loki's label parser does for protobuf.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
PY=/usr/bin/python3 # Debian's, which has python3-snappy
H=$NN_TMP/h
mkdir -p "$H"
RSS_CAP_KB=$((200 * 1024))
if grep -qa __asan_init "$AGG"; then RSS_CAP_KB=$((1200 * 1024)); fi

# Bodies.
head -c 256M /dev/zero | gzip -1 >"$H/gzip_bomb" # 256 MiB of zeros in ~250 KiB
"$PY" - "$H" <<'EOF'
import json, os, sys, time
sys.path.insert(0, os.environ["NN_SOURCE_DIR"] + "/tests/e2e")
import snappy
from hostile import fld, uvarint
out = sys.argv[1]
now = int(time.time() * 1000)
def push_pb(labels, line=b"x"):
    ts = fld(1, b"\x08" + uvarint(now // 1000) + b"\x10" + uvarint((now % 1000) * 1000000))
    return fld(1, fld(1, labels) + fld(2, ts + fld(2, line)))
def push_js(stream, line="x"):
    return json.dumps({"streams": [{"stream": stream, "values": [[str(now * 1000000), line]]}]}).encode()
def put(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
put("pb_million_labels", snappy.compress(push_pb(b"{" + b",".join([b'a="b"'] * 1000000) + b"}")))
put("pb_million_distinct", snappy.compress(push_pb(b"{" + b",".join(b'a%d="b"' % i for i in range(1000000)) + b"}")))
put("pb_huge_value", snappy.compress(push_pb(b'{job="h",v="' + b"x" * (1 << 20) + b'"}')))
put("pb_bad_utf8_value", snappy.compress(push_pb(b'{job="h",v="ok\xff\xfe"}')))
put("pb_bad_name", snappy.compress(push_pb(b'{job="h",\xff="x"}')))
good = push_pb(b'{job="h"}')
put("pb_truncated", snappy.compress(good[: len(good) // 2]))
put("js_many_labels", push_js({"a%d" % i: "b" for i in range(100000)}))
put("js_huge_value", push_js({"job": "h", "v": "x" * (1 << 20)}))
put("js_bad_utf8_value", b'{"streams":[{"stream":{"job":"h","kind":"badlabel","v":"ok\xff\xfe"},"values":[["%d","x"]]}]}' % (now * 1000000))
put("js_long_line", push_js({"job": "h"}, "y" * (3 << 20)))
put("js_truncated", b'{"streams":[{"stream":{"job":"h"},"values":[["1')
put("js_valid", push_js({"job": "h", "kind": "valid"}, "a" * 40))
put("logql_pipeline", ('{job="h"}' + ' |= "x"' * 20000).encode())
put("logql_pipeline_9k", ('{job="h"}' + ' |= "x"' * 9000).encode())
put("logql_pipeline_64", ('{job="h"}' + ' != "zz"' * 64).encode())
put("logql_nested", ("sum(" * 10000 + 'count_over_time({job="h"}[1m])' + ")" * 10000).encode())
EOF

port=$(nn_free_port)
base=http://127.0.0.1:$port
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/data
web:
  max_body_size: 4MiB
ingest:
  max_decompressed_size: 16MiB
YML
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_wait_http "$base/-/ready" 60
rss_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID_agg/status"; }

# after NAME WHY...: the common checks after one hostile request: healthy, RSS under the cap.
after() {
  local name=$1 why=$2 rss
  curl -fsS -o /dev/null --max-time 5 "$base/-/healthy" || why+=" not healthy afterwards;"
  rss=$(rss_kb VmRSS)
  [ -n "$rss" ] && [ "$rss" -lt "$RSS_CAP_KB" ] || why+=" RSS ${rss:-gone} kB;"
  [ -z "$why" ] || echo "# $name:$why"
  nn_check "$name (RSS ${rss:-?} kB)" [ -z "$why" ]
}

# hit NAME STATUS REGEX CURL_ARGS...: as in agg_hostile.sh: STATUS with a body matching
# REGEX within 5 s.
hit() {
  local name=$1 want=$2 re=$3 out code secs why=""
  shift 3
  out=$(curl -s -o "$NN_TMP/resp" -w '%{http_code} %{time_total}' --max-time 30 "$@") || true
  code=${out% *}
  secs=${out#* }
  [ "$code" = "$want" ] || why+=" status $code, want $want;"
  if [ -z "$re" ]; then
    [ ! -s "$NN_TMP/resp" ] || why+=" body not empty;"
  else
    grep -qaE -- "$re" "$NN_TMP/resp" || why+=" body $(head -c 200 "$NN_TMP/resp") does not match /$re/;"
  fi
  awk -v s="$secs" 'BEGIN { exit !(s < 5) }' || why+=" took ${secs}s;"
  after "$name -> $want (${secs}s)" "$why"
}

W=$base/api/v1/write
P=$base/loki/api/v1/push
PB=(-H 'Content-Type: application/x-protobuf')
JS=(-H 'Content-Type: application/json')

hit "gzip bomb as remote write" 415 'unsupported Content-Encoding "gzip"; use snappy, zstd or lz4' \
  "$W" "${PB[@]}" -H 'Content-Encoding: gzip' --data-binary @"$H/gzip_bomb"
hit "gzip bomb as a Loki JSON push" 415 'unsupported Content-Encoding "gzip"' \
  "$P" "${JS[@]}" -H 'Content-Encoding: gzip' --data-binary @"$H/gzip_bomb"
hit "gzip bomb as a Loki protobuf push" 415 'unsupported Content-Encoding "gzip"' \
  "$P" "${PB[@]}" -H 'Content-Encoding: gzip' --data-binary @"$H/gzip_bomb"
hit "Loki push: a stream with a million labels" 400 "stream labels are 6000001 bytes, more than the 16384 allowed" \
  "$P" "${PB[@]}" --data-binary @"$H/pb_million_labels"
hit "Loki push: a million distinct labels (over max_body_size)" 413 "too large" \
  "$P" "${PB[@]}" --data-binary @"$H/pb_million_distinct"
hit "Loki push: a 1 MiB label value" 400 "stream labels are 1048590 bytes, more than the 16384 allowed" \
  "$P" "${PB[@]}" --data-binary @"$H/pb_huge_value"
hit "Loki push: a label value that is not UTF-8" 400 'label "v" has a value that is not valid UTF-8' \
  "$P" "${PB[@]}" --data-binary @"$H/pb_bad_utf8_value"
hit "Loki push: a label name that is not valid" 400 "expected a label name" \
  "$P" "${PB[@]}" --data-binary @"$H/pb_bad_name"
hit "Loki push: truncated protobuf" 400 "logproto.PushRequest.* exceeds the [0-9]+ bytes left" \
  "$P" "${PB[@]}" --data-binary @"$H/pb_truncated"
hit "Loki JSON push: 100,000 labels" 400 "stream labels are [0-9]+ bytes, more than the 16384 allowed" \
  "$P" "${JS[@]}" --data-binary @"$H/js_many_labels"
hit "Loki JSON push: a 1 MiB label value" 400 "more than the 16384 allowed" \
  "$P" "${JS[@]}" --data-binary @"$H/js_huge_value"
hit "Loki JSON push: a label value that is not UTF-8 (kept as U+FFFD, as Loki)" 204 "" \
  "$P" "${JS[@]}" --data-binary @"$H/js_bad_utf8_value"
v=$(curl -fsS "$base/loki/api/v1/label/v/values" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["data"])')
nn_check "and it reads back as valid JSON with U+FFFD ($v)" [ "$v" = $'[\'ok\uFFFD\uFFFD\']' ]
hit "Loki JSON push: a 3 MiB line" 400 "line too long for stream .*: 3145728 bytes, the limit is" \
  "$P" "${JS[@]}" --data-binary @"$H/js_long_line"
hit "Loki JSON push: truncated JSON" 400 "invalid JSON at line 1 column [0-9]+: premature end of input" \
  "$P" "${JS[@]}" --data-binary @"$H/js_truncated"
hit "Loki JSON push: a valid push still works" 204 "" "$P" "${JS[@]}" --data-binary @"$H/js_valid"

LQ=$base/loki/api/v1/query_range
hit "LogQL with 20,000 line filters (140 KB)" 400 "query is 140009 bytes, at most 65536 allowed" "$LQ" \
  --data-urlencode query@"$H/logql_pipeline" --data-urlencode since=1h
hit "LogQL with 9,000 line filters" 400 "more than 64 line filters" "$LQ" \
  --data-urlencode query@"$H/logql_pipeline_9k" --data-urlencode since=1h
hit "LogQL with 64 line filters (the limit)" 200 '"status":"success"' "$LQ" \
  --data-urlencode query@"$H/logql_pipeline_64" --data-urlencode since=1h
hit "LogQL nested 10,000 deep" 400 "parse error" "$LQ" --data-urlencode query@"$H/logql_nested"
hit "LogQL backtracking regexp (a|aa)*b" 200 '"status":"success"' "$LQ" \
  --data-urlencode 'query={kind="valid"} |~ "(a|aa)*b"' --data-urlencode since=1h
hit "LogQL nested quantifiers ((a*)*)*b" 200 '"status":"success"' "$LQ" \
  --data-urlencode 'query={kind="valid"} |~ "((a*)*)*b"' --data-urlencode since=1h
hit "LogQL over 100 years" 200 '"status":"success"' "$LQ" --data-urlencode 'query={job="h"}' \
  --data-urlencode start=0 --data-urlencode "end=$(date +%s)000000000"
hit "LogQL with an empty-compatible selector" 400 "at least one regexp or equality matcher" \
  "$LQ" --data-urlencode 'query={job=~".*"}'
hit "PromQL label_replace with a backtracking regexp" 200 '"status":"success"' "$base/api/v1/query" \
  --data-urlencode 'query=label_replace(vector(1), "a", "$1", "b", "(a|aa)*b")'

# raw CASE DESC PYCOND: runs hostile_http.py CASE; PYCOND (Python, over the JSON answer r)
# must hold.
raw() {
  local res why=""
  res=$(python3 "$E2E_HTTP" "127.0.0.1:$port" "$1") || why+=" hostile_http.py failed;"
  echo "# $1: ${res:0:220}"
  python3 -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if ($3) else 1)" "$res" 2>/dev/null ||
    why+=" not ($3);"
  after "$2" "$why"
}
E2E_HTTP=$NN_SOURCE_DIR/tests/e2e/hostile_http.py
raw big_header "a 1 MiB request header -> 400" 'r["status"] == 400 and r["secs"] < 5'
raw many_headers "100,000 request headers -> 400" 'r["status"] == 400 and r["secs"] < 5'
raw long_url "a 1 MiB URL -> 4xx" '400 <= r["status"] < 500 and r["secs"] < 5'
raw bad_chunked "broken chunked encoding -> 400 with a message" \
  'r["status"] == 400 and "chunked" in r["head"] and r["secs"] < 5'
raw huge_chunk "a chunk announcing 2^64 bytes -> 413 or closed at max_body_size" \
  '(r["status"] == 413 or r["closed"]) and r["secs"] < 10'
raw short_body "a body shorter than its Content-Length -> closed by the server's timeout" \
  'r["closed"] and r["secs"] < 35'
raw slowloris "one header byte a second (slowloris) -> closed by the server" \
  'r["closed"] and r["secs"] < 35'
raw h2_junk "an HTTP/2 preface and junk -> 4xx or closed" \
  '(r["status"] is not None and 400 <= r["status"] < 500 or r["closed"]) and r["secs"] < 5'
raw junk_request "4 KiB of random bytes as a request -> 400" 'r["status"] == 400 and r["secs"] < 5'
raw idle_flood "2,000 idle connections: /-/healthy still answers at once" \
  'r["opened"] == 2000 and r["healthy_status"] == 200 and r["healthy_secs"] < 2'

hwm=$(rss_kb VmHWM)
nn_check "peak RSS over the whole run ($hwm kB) stayed under $RSS_CAP_KB kB" [ "$hwm" -lt "$RSS_CAP_KB" ]
nn_check "the valid push is stored" \
  bash -c "curl -fsS '$LQ' --data-urlencode 'query={kind=\"valid\"}' --data-urlencode since=1h | grep -q aaaaaaaa"
nn_finish
