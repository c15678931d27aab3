#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Loki's /loki/api/v1/series and /loki/api/v1/index/stats on the aggregator, as Grafana's
# Loki datasource calls them: streams pushed through /loki/api/v1/push, then series for
# several selectors (union without duplicates), time ranges in ns, seconds and RFC3339,
# the default last hour, GET and POST, and 400s for a missing or unparsable match[]; labels
# and label values with since.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator

port=$(nn_free_port)
A=http://127.0.0.1:$port
cat >"$NN_TMP/a.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/a
YML
nn_start a "$AGG" --config "$NN_TMP/a.yml"
nn_wait_http "$A/-/ready" 60

now=$(date +%s)
ns() { echo "$((now - $1))000000000"; } # ns timestamp, $1 seconds ago
cat >"$NN_TMP/push.json" <<JSON
{"streams":[
 {"stream":{"job":"api","env":"prod"},"values":[["$(ns 1800)","a1"],["$(ns 600)","a2"]]},
 {"stream":{"job":"web","env":"prod"},"values":[["$(ns 1500)","w1"]]},
 {"stream":{"job":"web","env":"dev"},"values":[["$(ns 1200)","d1"]]},
 {"stream":{"job":"old","env":"prod"},"values":[["$(ns 7200)","o1"]]}
]}
JSON
code=$(curl -s -o "$NN_TMP/resp" -w '%{http_code}' "$A/loki/api/v1/push" \
  -H 'Content-Type: application/json' --data-binary @"$NN_TMP/push.json")
nn_check "push accepted ($code)" [ "$code" = 204 ]

# series ARGS...: prints the data as sorted "k=v,k=v" lines joined by ';' (or the HTTP
# status and body when the answer is not a 200).
series() {
  local code
  code=$(curl -s -o "$NN_TMP/resp" -w '%{http_code}' -G "$A/loki/api/v1/series" "$@")
  if [ "$code" != 200 ]; then
    echo "$code $(head -c 300 "$NN_TMP/resp")"
    return
  fi
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"] == "success", d
print(";".join(",".join(k + "=" + v for k, v in sorted(s.items())) for s in d["data"]))' "$NN_TMP/resp"
}
expect() { # expect DESC WANT GOT
  [ "$2" = "$3" ] || echo "# $1: want '$2', got '$3'"
  nn_check "$1" [ "$2" = "$3" ]
}

expect "one selector, default last hour" "env=prod,job=api;env=prod,job=web" \
  "$(series --data-urlencode 'match[]={env="prod"}')"
expect "two overlapping selectors: union without duplicates" \
  "env=dev,job=web;env=prod,job=api;env=prod,job=web" \
  "$(series --data-urlencode 'match[]={job="web"}' --data-urlencode 'match[]={env=~"pr.+"}')"
expect "regex and negative matchers" "env=dev,job=web" \
  "$(series --data-urlencode 'match[]={job=~"w.*",env!="prod"}')"
expect "no stream matches: empty list" "" "$(series --data-urlencode 'match[]={job="nope"}')"
expect "a range in ns that holds only dev (and not api, which has entries around it)" \
  "env=dev,job=web" \
  "$(series --data-urlencode 'match[]={job=~".+"}' --data-urlencode "start=$(ns 1300)" \
    --data-urlencode "end=$(ns 1000)")"
expect "a range in Unix seconds reaching back 3 h finds the old stream" \
  "env=prod,job=api;env=prod,job=old;env=prod,job=web" \
  "$(series --data-urlencode 'match[]={env="prod"}' --data-urlencode "start=$((now - 10800))" \
    --data-urlencode "end=$((now + 60))")"
rfc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
expect "a range in RFC3339" "env=prod,job=old" \
  "$(series --data-urlencode 'match[]={env="prod"}' --data-urlencode "start=$(rfc $((now - 7300)))" \
    --data-urlencode "end=$(rfc $((now - 7100)))")"
expect "since=15m" "env=prod,job=api" \
  "$(series --data-urlencode 'match[]={env=~".+"}' --data-urlencode since=15m)"
code=$(curl -s -o "$NN_TMP/resp" -w '%{http_code}' "$A/loki/api/v1/series" \
  --data-urlencode 'match[]={job="web"}')
nn_check "POST with a form body answers ($code)" [ "$code" = 200 ]
nn_check "POST finds both web streams" grep -qF '"env":"dev"' "$NN_TMP/resp"

got=$(series)
expect "no match[] is a 400" "400" "${got%% *}"
nn_check "the 400 says match[] is required" grep -qF "match[] is required" "$NN_TMP/resp"
got=$(series --data-urlencode 'match[]={job="web"}' --data-urlencode 'match[]={job=web}')
expect "an unparsable match[] is a 400" "400" "${got%% *}"
nn_check "the 400 names the selector and the position" \
  grep -qF 'invalid match[] {job=web}: parse error at line 1, col' "$NN_TMP/resp"
got=$(series --data-urlencode 'match[]={job="web"} |= "x"')
expect "a match[] with a line filter is a 400" "400" "${got%% *}"
got=$(series --data-urlencode 'match[]={job="web"}' --data-urlencode start=yesterday)
expect "a bad start is a 400" "400" "${got%% *}"
# Times and durations that would overflow int64 nanoseconds are refused, not wrapped.
got=$(series --data-urlencode 'match[]={job="web"}' --data-urlencode end=99999999999999999999)
expect "an end past int64 is a 400" "400" "${got%% *}"
got=$(series --data-urlencode 'match[]={job="web"}' --data-urlencode end=9000000000000000000)
expect "an end in year 2255 is a 400 (a default start before it must not overflow)" "400" \
  "${got%% *}"
got=$(series --data-urlencode 'match[]={job="web"}' --data-urlencode since=100000000000h)
expect "a since of 11 million years is a 400" "400" "${got%% *}"
nn_check "the 400 says since is invalid" grep -qF "invalid since" "$NN_TMP/resp"
got=$(series --data-urlencode 'match[]={job="web"}' --data-urlencode since=soon)
expect "an unparsable since is a 400" "400" "${got%% *}"

# labels and label values: the default last 6 h finds the old stream's job; since=15m only
# the stream with an entry in the last 15 minutes.
lv() { curl -fsS -G "$A/loki/api/v1/$1" "${@:2}" | python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["data"]))'; }
expect "label values, default last 6 h" "api,old,web" "$(lv label/job/values)"
expect "label values, since=15m" "api" "$(lv label/job/values --data-urlencode since=15m)"
expect "label names, since=15m" "env,job" "$(lv labels --data-urlencode since=15m)"
got=$(curl -s -o /dev/null -w '%{http_code}' -G "$A/loki/api/v1/labels" --data-urlencode since=soon)
expect "labels with an unparsable since is a 400" "400" "$got"

# index/stats: Grafana's query-size estimate, Loki's shape without an envelope.
st=$(curl -fsS -G "$A/loki/api/v1/index/stats" --data-urlencode 'query={env="prod"} |= "a"' |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["streams"], d["chunks"], d["entries"], d["bytes"])')
expect "index/stats for the last hour" "2 2 3 6" "$st"
code=$(curl -s -o "$NN_TMP/resp" -w '%{http_code}' -G "$A/loki/api/v1/index/stats" \
  --data-urlencode 'query={env=}')
nn_check "index/stats with a bad query is a 400 ($code)" [ "$code" = 400 ]
nn_finish
