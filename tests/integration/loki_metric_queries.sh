#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# LogQL metric queries on the aggregator's Loki API, as Grafana's Loki datasource sends them:
# streams with known timestamps pushed through /loki/api/v1/push, then count_over_time, rate
# and sum by (level) through query_range (matrix, explicit and default step) and query
# (vector; streams for a log query), and 400s for unsupported or too large queries. Then
# JSON and logfmt lines through pipelines: | json / | logfmt with label filters in log
# queries (streams by extracted labels), sum by an extracted label, the pipeline error, and
# unwrapped quantile_over_time and sum_over_time.
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
B=$(((now - 900) / 60 * 60)) # a minute boundary 15 minutes ago
ns() { echo "$((B + $1))000000000"; }
cat >"$NN_TMP/push.json" <<JSON
{"streams":[
 {"stream":{"app":"api","level":"error"},"values":[["$(ns 10)","boom a"],["$(ns 20)","ok"],["$(ns 70)","boom c"]]},
 {"stream":{"app":"api","level":"info"},"values":[["$(ns 30)","hello"],["$(ns 90)","hello"]]},
 {"stream":{"app":"web","level":"error"},"values":[["$(ns 60)","boom w"]]}
]}
JSON
code=$(curl -s -o "$NN_TMP/resp" -w '%{http_code}' "$A/loki/api/v1/push" \
  -H 'Content-Type: application/json' --data-binary @"$NN_TMP/push.json")
nn_check "push accepted ($code)" [ "$code" = 204 ]

# q ENDPOINT ARGS...: prints the result as "k=v,k=v@t:v t:v;..." with t in seconds from B
# (or the HTTP status and body when the answer is not a 200).
q() {
  local ep=$1 code
  shift
  code=$(curl -s -o "$NN_TMP/resp" -w '%{http_code}' -G "$A/loki/api/v1/$ep" "$@")
  if [ "$code" != 200 ]; then
    echo "$code $(head -c 300 "$NN_TMP/resp")"
    return
  fi
  python3 - "$NN_TMP/resp" "$B" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); b = int(sys.argv[2])
assert d["status"] == "success", d
data = d["data"]
assert "stats" in data, data
out = []
for s in data["result"]:
    if data["resultType"] == "streams":
        lab = s["stream"]; pts = ["%d:%s" % (int(t) // 10**9 - b, l) for t, l in s["values"]]
    else:
        lab = s["metric"]
        vals = s["values"] if data["resultType"] == "matrix" else [s["value"]]
        for t, v in vals:
            assert isinstance(t, (int, float)) and isinstance(v, str), s
        pts = ["%g:%s" % (t - b, v) for t, v in vals]
    out.append(",".join(k + "=" + v for k, v in sorted(lab.items())) + "@" + " ".join(pts))
print(data["resultType"] + " " + ";".join(out))
PY
}
expect() { # expect DESC WANT GOT
  [ "$2" = "$3" ] || echo "# $1: want '$2', got '$3'"
  nn_check "$1" [ "$2" = "$3" ]
}
range() { # range QUERY START END STEP
  q query_range --data-urlencode "query=$1" --data-urlencode "start=$((B + $2))" \
    --data-urlencode "end=$((B + $3))" ${4:+--data-urlencode "step=$4"}
}

expect "count_over_time per stream, windows (t-1m, t]" \
  "matrix app=api,level=error@60:2 120:1;app=api,level=info@60:1 120:1" \
  "$(range 'count_over_time({app="api"}[1m])' 60 120 60)"
expect "Grafana's log volume: sum by (level) with a line filter" \
  "matrix level=error@60:2 120:1" \
  "$(range 'sum by (level) (count_over_time({app=~".+"} |= "boom" [1m]))' 60 120 1m)"
expect "sum without (level)" "matrix app=api@60:3 120:2;app=web@60:1" \
  "$(range 'sum without (level) (count_over_time({app=~".+"}[1m]))' 60 120 60s)"
expect "rate is the count over the range in seconds" \
  "matrix app=web,level=error@60:0.016666666666666666" \
  "$(range 'rate({app="web"}[1m])' 60 120 60)"
expect "sum of rate times 60" "matrix @60:3 120:1" \
  "$(range 'sum(rate({level="error"}[1m])) * 60' 60 120 60)"
expect "bytes_over_time" "matrix app=api,level=info@60:5 120:5" \
  "$(range 'bytes_over_time({level="info"}[1m])' 60 120 60)"
expect "topk(1, ...)" "matrix app=api,level=error@60:2" \
  "$(range 'topk(1, count_over_time({app=~".+"}[1m]))' 60 60 60)"

# The default step: floor(range / 250) seconds, at least 1 s: 600 s -> 2 s; web's entry at
# 60 is in the windows of t = 60, 62, ..., 118: 30 points.
got=$(range 'count_over_time({app="web"}[1m])' 0 600)
npts=$(echo "$got" | tr ' ' '\n' | grep -c ':1$' || true)
expect "default step 2 s gives 30 points" "30" "$npts"
nn_check "the first of them at 60" grep -qF '@60:1 62:1' <<<"$got"

# POST with a form body, as Grafana sends it.
code=$(curl -s -o "$NN_TMP/resp" -w '%{http_code}' "$A/loki/api/v1/query_range" \
  --data-urlencode 'query=sum by (level) (count_over_time({app="api"}[1m]))' \
  --data-urlencode "start=$(ns 60)" --data-urlencode "end=$(ns 120)" --data-urlencode step=60)
nn_check "POST query_range answers ($code)" [ "$code" = 200 ]
nn_check "POST query_range is a matrix" grep -qF '"resultType":"matrix"' "$NN_TMP/resp"
nn_check "POST query_range has the info series" grep -qF '{"metric":{"level":"info"},"values":[[' \
  "$NN_TMP/resp"

# Instant queries.
expect "instant metric query: a vector at time" "vector @120:6" \
  "$(q query --data-urlencode 'query=sum(count_over_time({app=~".+"}[2m]))' \
    --data-urlencode "time=$((B + 120))")"
expect "instant sum by (app) in ns" "vector app=api@120:5;app=web@120:1" \
  "$(q query --data-urlencode 'query=sum by (app) (count_over_time({app=~".+"}[2m]))' \
    --data-urlencode "time=$(ns 120)")"
expect "instant log query: streams up to time" "streams app=web,level=error@60:boom w" \
  "$(q query --data-urlencode 'query={app="web"}' --data-urlencode "time=$((B + 100))")"
expect "instant log query with limit and direction" "streams app=api,level=error@10:boom a" \
  "$(q query --data-urlencode 'query={app="api"} |= "boom"' --data-urlencode "time=$((B + 100))" \
    --data-urlencode limit=1 --data-urlencode direction=forward)"
expect "a log query through query_range still answers streams" \
  "streams app=api,level=error@70:boom c 10:boom a" \
  "$(q query_range --data-urlencode 'query={app="api"} |= "boom"' \
    --data-urlencode "start=$((B))" --data-urlencode "end=$((B + 100))")"
expect "nothing matches: an empty matrix" "matrix " \
  "$(range 'count_over_time({app="nope"}[1m])' 60 120 60)"

# Bad queries are 400s that say what and where.
bad() { # bad DESC WANT-IN-BODY ENDPOINT ARGS...
  local desc=$1 want=$2 got
  shift 2
  got=$(q "$@")
  nn_check "$desc is a 400" [ "${got%% *}" = 400 ]
  grep -qF -- "$want" <<<"$got" || echo "# $desc: body '$got'"
  nn_check "$desc names it: $want" grep -qF -- "$want" <<<"$got"
}
bad "an unpack stage" "col 33: unsupported pipeline stage | unpack" query_range \
  --data-urlencode 'query=sum(count_over_time({app="api"} | unpack [1m]))'
bad "vector / vector" "binary operations between two vectors" query \
  --data-urlencode 'query=count_over_time({app="api"}[1m]) / count_over_time({app="web"}[1m])'
bad "an unwrap aggregation without unwrap" "sum_over_time without unwrap" query_range \
  --data-urlencode 'query=sum_over_time({app="api"}[1m])'
bad "too many points" "maximum resolution of 11000 points" query_range \
  --data-urlencode 'query=count_over_time({app="api"}[1m])' \
  --data-urlencode "start=$((B - 86400))" --data-urlencode "end=$B" --data-urlencode step=1
bad "a bad step" "invalid step" query_range \
  --data-urlencode 'query=count_over_time({app="api"}[1m])' --data-urlencode step=abc
bad "a bad time" "invalid time" query --data-urlencode 'query=count_over_time({app="api"}[1m])' \
  --data-urlencode time=yesterday
bad "a missing range" "expected a range" query --data-urlencode 'query=rate({app="api"})'

# Pipelines over JSON and logfmt lines.
cat >"$NN_TMP/push2.json" <<JSON
{"streams":[
 {"stream":{"app":"jsonapi"},"values":[
  ["$(ns 10)","{\\"status\\":500,\\"route\\":\\"/pay\\",\\"latency\\":\\"300ms\\",\\"req\\":{\\"method\\":\\"POST\\"}}"],
  ["$(ns 20)","{\\"status\\":200,\\"route\\":\\"/pay\\",\\"latency\\":\\"100ms\\",\\"req\\":{\\"method\\":\\"GET\\"}}"],
  ["$(ns 30)","{\\"status\\":503,\\"route\\":\\"/cart\\",\\"latency\\":\\"2s\\",\\"req\\":{\\"method\\":\\"GET\\"}}"],
  ["$(ns 40)","plain text, not JSON"]]},
 {"stream":{"app":"fmtapi"},"values":[
  ["$(ns 15)","level=error route=/pay latency=0.4"],
  ["$(ns 25)","level=info route=/pay latency=0.1"],
  ["$(ns 35)","level=info route=/cart latency=0.3"],
  ["$(ns 45)","level=error route=/cart latency=0.9"]]}
]}
JSON
code=$(curl -s -o "$NN_TMP/resp" -w '%{http_code}' "$A/loki/api/v1/push" \
  -H 'Content-Type: application/json' --data-binary @"$NN_TMP/push2.json")
nn_check "push of JSON and logfmt lines accepted ($code)" [ "$code" = 204 ]
logs() { # logs QUERY: a log query over [B, B+100), oldest first
  q query_range --data-urlencode "query=$1" --data-urlencode "start=$B" \
    --data-urlencode "end=$((B + 100))" --data-urlencode direction=forward
}
expect "| json | status >= 500: streams carry the extracted labels" \
  "streams app=jsonapi,latency=2s,req_method=GET,route=/cart,status=503@30:{\"status\":503,\"route\":\"/cart\",\"latency\":\"2s\",\"req\":{\"method\":\"GET\"}};app=jsonapi,latency=300ms,req_method=POST,route=/pay,status=500@10:{\"status\":500,\"route\":\"/pay\",\"latency\":\"300ms\",\"req\":{\"method\":\"POST\"}}" \
  "$(logs '{app="jsonapi"} | json | status >= 500')"
expect "| json on a plain line sets __error__" \
  "streams __error__=JSONParserErr,__error_details__=Value looks like object, but can't find closing '}' symbol,app=jsonapi@40:plain text, not JSON" \
  "$(logs '{app="jsonapi"} | json | __error__ != ""')"
expect "| logfmt | level=\"error\" | keep route" "streams route=/cart@45:level=error route=/cart latency=0.9;route=/pay@15:level=error route=/pay latency=0.4" \
  "$(logs '{app="fmtapi"} | logfmt | level="error" | keep route')"
expect "| logfmt | line_format rewrites the line" "streams app=fmtapi,latency=0.4,level=error,route=/pay@15:error /pay;app=fmtapi,latency=0.9,level=error,route=/cart@45:error /cart" \
  "$(logs '{app="fmtapi"} | logfmt | line_format "{{.level}} {{.route}}" |= "error"')"
expect "| json | latency > 250ms with a duration" "streams status=500@10:x;status=503@30:x" \
  "$(logs '{app="jsonapi"} | json | latency > 250ms | keep status' | sed 's/:{[^;]*/:x/g')"
expect "sum by (status) (count_over_time(... | json | __error__=\"\"))" \
  "matrix status=200@60:1;status=500@60:1;status=503@60:1" \
  "$(range 'sum by (status) (count_over_time({app="jsonapi"} | json | __error__="" [1m]))' 60 60 60)"
expect "error rate by route from JSON" "matrix route=/cart@60:0.016666666666666666;route=/pay@60:0.016666666666666666" \
  "$(range 'sum by (route) (rate({app="jsonapi"} | json | status >= 500 [1m]))' 60 60 60)"
# quantile_over_time(0.5) by route: /pay 0.4 and 0.1 -> 0.25; /cart 0.3 and 0.9 -> 0.6.
expect "quantile_over_time(0.5, | logfmt | unwrap latency) by (route)" \
  "matrix route=/cart@60:0.6;route=/pay@60:0.25" \
  "$(range 'quantile_over_time(0.5, {app="fmtapi"} | logfmt | unwrap latency [1m]) by (route)' 60 60 60)"
expect "sum_over_time of unwrap duration() by method" \
  "matrix req_method=GET@60:2.1;req_method=POST@60:0.3" \
  "$(range 'sum_over_time({app="jsonapi"} | json | __error__="" | unwrap duration(latency) [1m]) by (req_method)' 60 60 60)"
bad "a metric query left with __error__" "pipeline error: 'JSONParserErr'" query_range \
  --data-urlencode 'query=sum(count_over_time({app="jsonapi"} | json [1m]))' \
  --data-urlencode "start=$((B + 60))" --data-urlencode "end=$((B + 60))" --data-urlencode step=60
bad "a bad regexp stage" "invalid regexp" query_range \
  --data-urlencode 'query={app="jsonapi"} | regexp "(?P<a>["'
bad "unwrap in a log query" "unwrap is only valid in a metric query" query_range \
  --data-urlencode 'query={app="jsonapi"} | json | unwrap status'

nn_check "the aggregator is still up" curl -fsS -o /dev/null "$A/-/ready"
nn_finish
