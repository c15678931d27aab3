#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Hostile input against every aggregator endpoint: oversize bodies, decompression bombs
# (snappy, zstd, lz4), truncated protobuf, a million labels, huge and invalid label values,
# invalid UTF-8 in log lines, PromQL built to explode, malformed query encodings. Each gets
# its status and a clear message, quickly; after each the server is still healthy and its
# resident memory (and peak, VmHWM) stays under a cap.
#
# Decisions documented here:
# * Log lines that are not UTF-8 are accepted (204), as Loki does (jsoniter and protobuf
#   take any bytes); invalid bytes read back as U+FFFD, which is how Loki's JSON shows them.
# * query_range allows (end-start)/step <= 11000, i.e. 11,001 points, exactly as Prometheus
#   (api.go: `end.Sub(start)/step > 11000`); 11,002 points are refused.
# * rate(x[100y]) is valid PromQL in Prometheus; it must answer quickly and cheaply.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
PY=/usr/bin/python3 # Debian's, which has python3-snappy
LOAD=$NN_SOURCE_DIR/tests/e2e/rwload.py
H=$NN_TMP/h
RSS_CAP_KB=$((300 * 1024))
LABELS_CAP_KB=$((48 * 1024))
# AddressSanitizer's quarantine keeps freed memory resident (256 MiB by default): an ASan
# build gets the status and message checks, with memory caps that only catch runaways.
if grep -qa __asan_init "$AGG"; then
  RSS_CAP_KB=$((1200 * 1024))
  LABELS_CAP_KB=$((400 * 1024))
fi

"$PY" "$NN_SOURCE_DIR/tests/e2e/hostile.py" "$H"
# 2 GiB and 512 MiB of zeros as concatenated frames (both decoders take several frames).
head -c 32M /dev/zero | zstd -q -1 -c >"$H/z1"
head -c 32M /dev/zero | lz4 -q -c >"$H/l1"
for _ in $(seq 64); do cat "$H/z1"; done >"$H/zstd_bomb"
for _ in $(seq 16); do cat "$H/l1"; done >"$H/lz4_bomb"
head -c 5M /dev/zero >"$H/big"

port=$(nn_free_port)
base=http://127.0.0.1:$port
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/data
web:
  max_body_size: 4MiB
ingest:
  max_decompressed_size: 16MiB
query:
  max_samples: 20000
YML
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_wait_http "$base/-/ready" 60
# At most 100 requests a second per thread: the ledger check at the end reads every sample
# in one query, which max_samples (20,000) must allow (answers take about 1 ms now).
"$PY" "$LOAD" rw "$base/api/v1/write" "$NN_TMP/ledger" --threads 5 --series 10 --seconds 1 \
  --pause 0.01 --run h >/dev/null
nn_check "some series to query" [ "$(wc -l <"$NN_TMP/ledger")" -gt 100 ]

rss_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID_agg/status"; }

# hit NAME STATUS REGEX CURL_ARGS...: sends one request; it must get STATUS with a body
# matching REGEX within 5 s, the server must stay healthy, and RSS stay under the cap.
hit() {
  local name=$1 want=$2 re=$3 out code secs rss why=""
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
  curl -fsS -o /dev/null --max-time 5 "$base/-/healthy" || why+=" not healthy afterwards;"
  rss=$(rss_kb VmRSS)
  [ -n "$rss" ] && [ "$rss" -lt "$RSS_CAP_KB" ] || why+=" RSS ${rss:-gone} kB;"
  [ -z "$why" ] || echo "# $name:$why"
  nn_check "$name -> $want (${secs}s, RSS ${rss:-?} kB)" [ -z "$why" ]
}

PB=(-H 'Content-Type: application/x-protobuf')
JS=(-H 'Content-Type: application/json')
W=$base/api/v1/write
P=$base/loki/api/v1/push

# First, while the peak RSS is still low: 8 MB of protobuf that would take ~70 MiB of
# structs to decode must be refused by counting.
hit "a series with a million labels" 400 "series has 1000000 labels, more than the limit of 64" \
  "$W" "${PB[@]}" --data-binary @"$H/million_labels"
hwm=$(rss_kb VmHWM)
nn_check "the million labels were refused before decoding them (peak RSS $hwm kB < $LABELS_CAP_KB kB)" \
  [ "$hwm" -lt "$LABELS_CAP_KB" ]

# Bodies and compression.
hit "remote write body over web.max_body_size" 413 "too large" "$W" "${PB[@]}" --data-binary @"$H/big"
hit "Loki push body over web.max_body_size" 413 "too large" "$P" "${JS[@]}" --data-binary @"$H/big"
hit "query form body over web.max_body_size" 413 "too large" "$base/api/v1/query" --data-binary @"$H/big"
hit "snappy bomb (80 MiB of zeros)" 400 "snappy body decompresses to more than the 16777216-byte limit" \
  "$W" "${PB[@]}" --data-binary @"$H/snappy_bomb"
hit "snappy stream longer than its preamble says" 400 "snappy body: corrupt" \
  "$W" "${PB[@]}" --data-binary @"$H/snappy_liar"
hit "zstd bomb (2 GiB of zeros in 72 KiB)" 400 "zstd body decompresses to more than the 16777216-byte limit" \
  "$W" "${PB[@]}" -H 'Content-Encoding: zstd' --data-binary @"$H/zstd_bomb"
hit "lz4 bomb (512 MiB of zeros)" 400 "lz4 body decompresses to more than the 16777216-byte limit" \
  "$W" "${PB[@]}" -H 'Content-Encoding: lz4' --data-binary @"$H/lz4_bomb"
hit "snappy bomb as a Loki push" 400 "decompresses to more than" \
  "$P" "${PB[@]}" --data-binary @"$H/snappy_bomb"
hit "zstd bomb as a Loki JSON push" 400 "decompresses to more than" \
  "$P" "${JS[@]}" -H 'Content-Encoding: zstd' --data-binary @"$H/zstd_bomb"
hit "lz4 bomb as a Loki push" 400 "decompresses to more than" \
  "$P" "${PB[@]}" -H 'Content-Encoding: lz4' --data-binary @"$H/lz4_bomb"
hit "bytes that are not snappy" 400 "snappy body: corrupt" "$W" "${PB[@]}" --data-binary @"$H/garbage"
hit "truncated protobuf" 400 "prometheus.WriteRequest.* exceeds the [0-9]+ bytes left" \
  "$W" "${PB[@]}" --data-binary @"$H/truncated_pb"

# Labels.
hit "a 1 MiB label value" 400 'value of label "v" is 1048576 bytes, more than the limit of 4096' \
  "$W" "${PB[@]}" --data-binary @"$H/huge_value"
hit "a label value that is not UTF-8" 400 'label "v" has a value that is not valid UTF-8' \
  "$W" "${PB[@]}" --data-binary @"$H/bad_utf8_value"
hit "a label name that is not valid" 400 "invalid label name" \
  "$W" "${PB[@]}" --data-binary @"$H/bad_utf8_name"
hit "a valid write still works" 204 "" "$W" "${PB[@]}" --data-binary @"$H/valid"

# Log lines.
hit "Loki protobuf push with a non-UTF-8 line" 204 "" "$P" "${PB[@]}" --data-binary @"$H/push_bad_utf8.pb"
hit "Loki JSON push with a non-UTF-8 line" 204 "" "$P" "${JS[@]}" --data-binary @"$H/push_bad_utf8.json"
lines=$(curl -fsS "$base/loki/api/v1/query_range" --data-urlencode 'query={job="hostile"}' \
  --data-urlencode 'since=1h' | "$PY" -c '
import json, sys
for s in json.load(sys.stdin)["data"]["result"]:
    for _, l in s["values"]:
        print(s["stream"]["kind"], l)' | sort)
nn_check "both lines read back as valid JSON with U+FFFD for each invalid byte" \
  [ "$lines" = $'json bad \uFFFD\uFFFD utf-8 \uFFFD line\npb bad \uFFFD\uFFFD utf-8 \uFFFD line' ]
python3 -c 'print("[" * 100000)' >"$H/deep.json"
hit "Loki JSON nested 100,000 deep" 400 "maximum parsing depth" "$P" "${JS[@]}" --data-binary @"$H/deep.json"
hit "Loki JSON push with a numeric timestamp" 400 "timestamp must be a string" \
  "$P" "${JS[@]}" --data-binary @"$H/push_numeric_ts.json"

# PromQL.
Q=$base/api/v1/query
python3 -c 'print("(" * 10000 + "1" + ")" * 10000)' >"$H/parens"
hit "10,000 nested parentheses" 400 "parse error: expression nested too deeply" "$Q" --data-urlencode query@"$H/parens"
python3 -c 'print("-" * 100000 + "1")' >"$H/minus"
hit "100,000 unary minus signs" 400 "parse error: expression nested too deeply" "$Q" --data-urlencode query@"$H/minus"
python3 -c 'print("sum(" * 100000 + "x" + ")" * 100000)' >"$H/sums"
hit "100,000 nested aggregations" 400 "nested too deeply" "$Q" --data-urlencode query@"$H/sums"
python3 -c 'print("1+" * 200000 + "1")' >"$H/plus"
hit "a 400 KB chain of additions" 400 "parse error" "$Q" --data-urlencode query@"$H/plus"
python3 -c 'print("x{" + ",".join("a%d=\"b\"" % i for i in range(100000)) + "}")' >"$H/matchers"
hit "a selector with 100,000 matchers" 200 '"status":"success"' "$Q" --data-urlencode query@"$H/matchers"
hit "rate(x[100y])" 200 '"status":"success"' "$Q" --data-urlencode 'query=rate(rwload_value[100y])'
hit "a subquery of 100y at 1ms" 422 "query processing would load too many samples into memory in query execution" \
  "$Q" --data-urlencode 'query=rwload_value[100y:1ms]'
now=$(date +%s)
hit "a cross join beyond query.max_samples" 422 \
  '^\{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"\}$' \
  "$base/api/v1/query_range" --data-urlencode 'query=rwload_value * on(run) group_left() group by (run) (rwload_value)' \
  --data-urlencode "start=$((now - 600))" --data-urlencode "end=$now" --data-urlencode step=1
hit "query_range with 11,002 points" 400 "exceeded maximum resolution of 11,000 points per timeseries" \
  "$base/api/v1/query_range?query=1&start=0&end=11001&step=1"
hit "query_range with 11,001 points (Prometheus's limit)" 200 '"status":"success"' \
  "$base/api/v1/query_range?query=1&start=0&end=11000&step=1"
hit "query_range with a step of 1e-300" 400 "zero or negative query resolution step" \
  "$base/api/v1/query_range?query=1&start=0&end=1&step=1e-300"
hit "a regexp that does not compile" 400 "error parsing regexp" "$Q" --data-urlencode 'query=x{a=~"(?P<n"}'

# Encodings and parameters.
hit "query string with %zz" 400 "invalid form or query string encoding" "$Q?query=%zz"
hit "query string ending in %" 400 "invalid form or query string encoding" "$Q?query=1%"
hit "form body with %g1" 400 "invalid form or query string encoding" \
  "$Q" -H 'Content-Type: application/x-www-form-urlencoded' --data-binary 'query=%g1'
hit "a query that is not UTF-8" 400 "parse error" "$Q?query=%ff%fe"
hit "time=1e300" 400 'invalid parameter \\"time\\"' "$Q?query=1&time=1e300"
hit "start=NaN" 400 'invalid parameter \\"start\\"' "$base/api/v1/query_range?query=1&start=NaN&end=1&step=1"
hit "65 match[] selectors" 400 "more than 64 selectors" \
  "$base/api/v1/series?$(python3 -c 'print("&".join(["match[]=up"] * 65))')"
hit "a label name that is not UTF-8 in the path" 400 "invalid label name" "$base/api/v1/label/%ff/values"
python3 -c 'print("&".join(["a=1"] * 200000) + "&query=1")' >"$H/params"
hit "200,000 form parameters" 200 '"status":"success"' "$Q" --data-binary @"$H/params"
hit "a LogQL regexp that does not compile" 400 "invalid regexp" \
  "$base/loki/api/v1/query_range" --data-urlencode 'query={job="hostile"} |~ "("'
hit "an unterminated LogQL selector" 400 "parse error" \
  "$base/loki/api/v1/query_range" --data-urlencode 'query={job="x"'
hit "a Loki limit that is not a number" 400 "invalid limit" \
  "$base/loki/api/v1/query_range" --data-urlencode 'query={job="x"}' --data-urlencode 'limit=1e99'

hwm=$(rss_kb VmHWM)
nn_check "peak RSS over the whole run ($hwm kB) stayed under $RSS_CAP_KB kB" [ "$hwm" -lt "$RSS_CAP_KB" ]
nn_check "the acknowledged samples are all still there" \
  "$PY" "$NN_SOURCE_DIR/tests/e2e/ledger_check.py" rw "$base" "$NN_TMP/ledger"
nn_finish
