#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The SLO page in a real browser: the demo fleet (payments/api failing from +2 s) feeds the
# agent and the aggregator; headless Chromium loads the page, the DOM must show the counts
# and the breached SLO as breached, there must be no console errors, and full-page
# screenshots (desktop and a 390-px phone) are saved under the build directory.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
AGENT=$NN_BINARY_DIR/agent/nines-agent
FLEET=$NN_BINARY_DIR/bench/fleet/nines-fleet
CHROME=$(command -v chromium || true)
OUT=$NN_BINARY_DIR/screenshots
mkdir -p "$OUT"

port=$(nn_free_port)
aport=$(nn_free_port)
base=$(python3 -c 'import socket
for p in range(30000, 60000, 17):
    ok = True
    for q in range(p, p + 10):
        s = socket.socket()
        try: s.bind(("127.0.0.1", q))
        except OSError: ok = False
        s.close()
    if ok: print(p); break')

nn_start fleet "$FLEET" --log-dir "$NN_TMP/containers" --base-port "$base" --rps 20 \
  --spike-at 2 --spike-rate 0.3 --latency-at -1 --down-at -1
targets=$("$FLEET" --base-port "$base" --list |
  awk '{printf "        - targets: [\"%s\"]\n          labels: {project: %s, service: %s}\n", $3, $1, $2}')
cat >"$NN_TMP/agent.yml" <<YML
listen_address: 127.0.0.1:$aport
data_dir: $NN_TMP/agent
logs:
  include: [$NN_TMP/containers/*.log]
  destinations: [{name: agg, url: "http://127.0.0.1:$port/loki/api/v1/push", codec: zstd}]
scrape:
  scrape_interval: 2s
  scrape_timeout: 1s
  scrape_configs:
    - job_name: demo-fleet
      static_configs:
$targets
remote_write:
  batch_wait: 500ms
  destinations: [{name: agg, url: "http://127.0.0.1:$port/api/v1/write", codec: zstd}]
YML
cat >"$NN_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$port
data_dir: $NN_TMP/agg
slo:
  spec_files: [$NN_SOURCE_DIR/alerts/slo/native/*.yml]
  evaluation_interval: 5s
YML
nn_start agg "$AGG" --config "$NN_TMP/agg.yml"
nn_start agent "$AGENT" --config "$NN_TMP/agent.yml"
nn_check "aggregator ready" nn_wait_http "http://127.0.0.1:$port/-/ready"

breached() {
  curl -fsS "http://127.0.0.1:$port/api/v1/slos" |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]["slos"]; sys.exit(0 if any(s["id"]=="payments-api-requests-availability" and s["status"]=="breached" for s in d) else 1)'
}
for _ in $(seq 90); do breached && break; sleep 1; done
nn_check "the payments/api availability SLO is breached in the API" breached

# The spike pages; the page derives the incident from the ALERTS series it left in the store.
incident() {
  curl -fsS "http://127.0.0.1:$port/" |
    python3 -c 'import re,sys; h=sys.stdin.read(); m=re.search(r"id=\"slo-payments-api-requests-availability\".*?</tr>", h, re.S); sys.exit(0 if m and re.search(r"class=\"incidents\" data-count=\"[1-9]", m.group(0)) and "page incident" in m.group(0) else 1)'
}
for _ in $(seq 60); do incident && break; sleep 1; done
nn_check "the payments/api row lists the page incident from the ALERTS history" incident

if [ -z "$CHROME" ]; then
  echo "chromium is not installed (scripts/setup installs it)"
  NN_FAILS=$((NN_FAILS + 1))
  nn_finish
fi
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --disable-dev-shm-usage --hide-scrollbars --enable-logging=stderr --v=0)
url="http://127.0.0.1:$port/"
timeout 60 "$CHROME" "${flags[@]}" --user-data-dir="$NN_TMP/chrome1" --virtual-time-budget=3000 \
  --dump-dom "$url" >"$NN_TMP/dom.html" 2>"$NN_TMP/chrome-dom.log"
nn_check "Chromium rendered the page" grep -q 'id="verdict"' "$NN_TMP/dom.html"
python3 - "$NN_TMP/dom.html" "$port" <<'PY' >"$NN_TMP/dom-check.txt"
import json, re, sys, urllib.request
dom = open(sys.argv[1]).read()
api = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/slos" % sys.argv[2]))["data"]
rows = re.findall(r'<tr class="slo" data-status="([a-z_]+)" id="slo-([^"]+)"', dom)
print("rows", len(rows), "slos", len(api["slos"]))
counts = {k: int(v) for k, v in re.findall(r'id="count-([a-z_]+)"><span class="n">(\d+)</span>', dom)}
print("counts", counts)
ok = len(rows) == len(api["slos"]) and sum(counts.values()) == len(rows)
status = dict((i, s) for s, i in rows)
ok = ok and status.get("payments-api-requests-availability") == "breached"
ok = ok and counts.get("breached", 0) == sum(1 for s, _ in rows if s == "breached") >= 1
print("ok" if ok else "MISMATCH")
PY
cat "$NN_TMP/dom-check.txt"
nn_check "the DOM shows every SLO, the counts add up, payments/api is breached" grep -qx ok "$NN_TMP/dom-check.txt"
nn_check "the verdict names the breach" grep -q 'SLOs breached</p>' "$NN_TMP/dom.html"

for view in desktop:1280,2400 phone:390,3200; do
  name=${view%%:*} size=${view#*:}
  timeout 60 "$CHROME" "${flags[@]}" --user-data-dir="$NN_TMP/chrome-$name" --window-size="$size" \
    --virtual-time-budget=3000 --screenshot="$OUT/slo-page-$name.png" "$url" \
    2>"$NN_TMP/chrome-$name.log" >/dev/null
  nn_check "a $name screenshot was saved" test -s "$OUT/slo-page-$name.png"
done
nn_check "no console errors" bash -c "! grep -hiE 'CONSOLE.*(error|uncaught)|Refused to' '$NN_TMP'/chrome-*.log"
echo "screenshots: $OUT/slo-page-desktop.png $OUT/slo-page-phone.png"
nn_finish
