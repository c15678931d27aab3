#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Alert latency: from an error spike written to a container log until Alertmanager has the
# alert. A kubelet-named CRI file carries JSON access-log lines for two services (20 lines/s
# each, 2 % 5xx). nines-agent tails it; its logs -> metrics stage turns the lines into
# nines_log_http_requests_total{service,status,...} on the agent's /metrics. Two stacks watch
# that same counter at the same time, with the same settings:
#   nines: the agent scrapes its own /metrics every SCRAPE s and remote-writes (zstd,
#          batch_wait 1s) to nines-aggregator, and pushes the series that lines changed at
#          most every logs.metrics.push_interval (1s by default) with the labels of that
#          scrape, flushing the batch at once; the aggregator evaluates the rule every EVAL s
#          and sends to Alertmanager A;
#   peer:  Prometheus 2.42 scrapes the agent's /metrics every SCRAPE s, evaluates the same
#          rule every EVAL s and sends to Alertmanager B (0.25, same config).
# Rule (both): sum by (service) (rate(5xx[30s])) / sum by (service) (rate(all[30s])) > 0.05,
# no `for`. After a warm-up and a random 0-5 s, one service's lines go to 200 lines/s with
# 50 % 5xx. Latency = the first moment a poll of Alertmanager's GET /api/v2/alerts (every
# 50 ms) lists that service's alert, minus the moment the first spike lines were written.
# Both stacks see the same spike, so every run measures both. Each run starts the agent,
# the aggregator and Prometheus afresh, so that the phases of their timers are drawn anew.
# Runs: BENCH_ALERT_RUNS, default max(5, BENCH_RUNS) (BENCH_QUICK=1: BENCH_RUNS, shorter
# warm-up). Intervals: BENCH_ALERT_SCRAPE and BENCH_ALERT_EVAL (seconds, default 5);
# BENCH_ALERT_BATCH_WAIT sets the agent's remote_write batch_wait (default 1s);
# BENCH_ALERT_PUSH_INTERVAL its logs.metrics.push_interval (default 1s; 0s: by scrape only).
# Both rule engines evaluate a group at Prometheus's aligned timestamps (a hash of the group's
# name and file), and both load the same file, so they evaluate at the same instants: the
# difference between them is whether the crossing sample has arrived by then (Prometheus's
# scrape vs the agent's scrape + remote write, each at its own phase) and how fast the
# notifier delivers. The second figure isolates the latter: from the alert's startsAt (the
# timestamp of the evaluation that fired it) to the poll that saw it in Alertmanager.
source "$(dirname "$0")/lib.sh"

AGENT=$BENCH_BUILD/agent/nines-agent
AGG=$BENCH_BUILD/aggregator/nines-aggregator
AM=/usr/bin/prometheus-alertmanager
PROM=/usr/bin/prometheus
SCRAPE=${BENCH_ALERT_SCRAPE:-5}
EVAL=${BENCH_ALERT_EVAL:-5}
BATCH_WAIT=${BENCH_ALERT_BATCH_WAIT:-1s} # the agent's remote_write batch_wait (its default)
PUSH=${BENCH_ALERT_PUSH_INTERVAL:-1s}     # the agent's logs.metrics.push_interval (its default)
if [ "$BENCH_QUICK" = 1 ]; then
  RUNS=${BENCH_ALERT_RUNS:-$BENCH_RUNS} WARMUP=20
else
  RUNS=${BENCH_ALERT_RUNS:-$((BENCH_RUNS > 5 ? BENCH_RUNS : 5))} WARMUP=25
fi
for b in "$AGENT" "$AGG" "$AM" "$PROM"; do
  if [ ! -x "$b" ]; then
    bench_log "alert: $b is missing (bench/run builds nines; apt-get install prometheus prometheus-alertmanager)"
    exit 1
  fi
done

# forget PID: a stopped process leaves BENCH_PIDS, so that cleanup never signals a reused PID.
forget() {
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}

am1=$(bench_free_port) am2=$(bench_free_port)
cat >"$BENCH_TMP/am.yml" <<'YML'
route: {receiver: none, group_by: [alertname, service], group_wait: 1s, group_interval: 1s}
receivers: [{name: none}]
YML

# The log writer and Alertmanager poller of one run: baseline lines for `base` and the run's
# spike service from the start (each gets one 5xx at once, so its 5xx series exists), the
# warm-up, a random 0-5 s, then the spike; prints one JSON line with both latencies.
cat >"$BENCH_TMP/driver.py" <<'PY'
import datetime, json, os, random, sys, threading, time, urllib.parse, urllib.request
path, svcs, spike_svc, warmup, am_nines, am_prom, q_nines, q_prom = sys.argv[1:9]
svcs, warmup = svcs.split(","), float(warmup)
BASE, SPIKE, TICK = 20, 200, 0.1  # lines/s per service; spike lines/s; writer period
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
state = {"spike": False, "t0": None}
lock = threading.Lock()
stop = threading.Event()

def line(svc, status):
    now = time.time_ns()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + ".%09dZ" % (now % 10**9)
    body = json.dumps({"service": svc, "method": "GET", "path": "/api/items", "status": status,
                       "duration_ms": 12})
    return "%s stdout F %s\n" % (ts, body)

def writer():
    cnt, acc = {}, {}  # lines written, fractional lines carried, per service
    while not stop.is_set():
        out = []
        spike = state["spike"]
        for svc in svcs:
            hot = spike and svc == spike_svc
            acc[svc] = acc.get(svc, 0.0) + (SPIKE if hot else BASE) * TICK
            while acc[svc] >= 1:
                acc[svc] -= 1
                n = cnt[svc] = cnt.get(svc, 0) + 1
                if hot:
                    status = 500 if n % 2 else 200
                else:  # 2 % errors, the first line a 5xx
                    status = 500 if n % 50 == 1 else 200
                out.append(line(svc, status))
        with lock:
            if spike and state["t0"] is None:
                state["t0"] = time.time()
            os.write(fd, "".join(out).encode())
        time.sleep(TICK)

def alert(am, svc):
    q = urllib.parse.urlencode([("filter", 'alertname="LogErrorRatio"'),
                                ("filter", 'service="%s"' % svc)])
    try:
        with urllib.request.urlopen("%s/api/v2/alerts?%s" % (am, q), timeout=2) as r:
            alerts = json.load(r)
    except OSError:
        return None
    return alerts[0] if alerts else None

t = threading.Thread(target=writer, daemon=True)
t.start()
time.sleep(warmup)
for svc in svcs:  # the baseline must not alert
    for am in (am_nines, am_prom):
        if alert(am, svc):
            print("baseline of %s already alerting at %s" % (svc, am), file=sys.stderr)
            sys.exit(1)
time.sleep(random.uniform(0, 5))
state["spike"] = True
while state["t0"] is None:
    time.sleep(0.005)
t0 = state["t0"]
seen, fired = {"nines": None, "prometheus": None}, {}
while time.time() < t0 + 90 and None in seen.values():
    for name, am in (("nines", am_nines), ("prometheus", am_prom)):
        if seen[name] is None:
            a = alert(am, spike_svc)
            if a:
                seen[name] = time.time() - t0
                at = datetime.datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00"))
                fired[name] = at.timestamp() - t0
    time.sleep(0.05)
stop.set()
t.join()

def first_seen(api):
    """Seconds from the spike to the first stored sample that shows it (a jump of the 5xx
    counter), from the system's own query API; None when there is none."""
    q = urllib.parse.urlencode({"query": 'nines_log_http_requests_total{service="%s",status="500"}[2m]'
                                % spike_svc})
    try:
        with urllib.request.urlopen("%s/api/v1/query?%s" % (api, q), timeout=10) as r:
            res = json.load(r)["data"]["result"]
    except (OSError, ValueError, KeyError):
        return None
    vals = [(float(ts), float(v)) for ts, v in res[0]["values"]] if res else []
    for (_, v0), (ts, v) in zip(vals, vals[1:]):
        if ts > t0 and v - v0 >= 5:  # the baseline adds about 2 per scrape
            return ts - t0
    return None

scraped = {"nines": first_seen(q_nines), "prometheus": first_seen(q_prom)}
print(json.dumps({"service": spike_svc, "nines": seen["nines"], "prometheus": seen["prometheus"],
                  "fired": fired, "scraped": scraped, "t0": t0}), flush=True)
PY

bench_wait_quiet "alert"
bench_start AM1 am-nines "$AM" --config.file="$BENCH_TMP/am.yml" --storage.path="$BENCH_TMP/am1" \
  --web.listen-address="127.0.0.1:$am1" --cluster.listen-address=
bench_start AM2 am-prom "$AM" --config.file="$BENCH_TMP/am.yml" --storage.path="$BENCH_TMP/am2" \
  --web.listen-address="127.0.0.1:$am2" --cluster.listen-address=
bench_wait_http "http://127.0.0.1:$am1/-/ready"
bench_wait_http "http://127.0.0.1:$am2/-/ready"
bench_log "alert: $RUNS runs, scrape ${SCRAPE}s, eval ${EVAL}s, warm-up ${WARMUP}s"

# Every run starts the agent, the aggregator and Prometheus afresh (new ports, data and rule
# file paths), so that the phases of their scrape and evaluation timers are drawn anew; the
# Alertmanagers stay up, and each run spikes a service of its own.
: >"$BENCH_TMP/runs.jsonl"
for ((r = 0; r < RUNS; r++)); do
  d=$BENCH_TMP/run$r
  mkdir -p "$d/containers"
  aport=$(bench_free_port) gport=$(bench_free_port) pport=$(bench_free_port)
  logfile=$d/containers/web-7d9f00_bench_web-$(printf '%064d' 0 | tr 0 a).log
  cat >"$d/rules.yml" <<'YML'
groups:
  - name: bench-alert
    rules:
      - alert: LogErrorRatio
        expr: >-
          sum by (service) (rate(nines_log_http_requests_total{status=~"5.."}[30s]))
          / sum by (service) (rate(nines_log_http_requests_total[30s])) > 0.05
        labels: {severity: page}
YML
  cat >"$d/agent.yml" <<YML
listen_address: 127.0.0.1:$aport
data_dir: $d/agent
logs:
  include: [$d/containers/*.log]
  batch_wait: 1s
  destinations: [{name: aggregator, url: "http://127.0.0.1:$gport/loki/api/v1/push", codec: zstd}]
  metrics: {enabled: true, push_interval: $PUSH}
scrape:
  scrape_interval: ${SCRAPE}s
  scrape_configs:
    - job_name: nines-agent
      static_configs: [{targets: ["127.0.0.1:$aport"]}]
remote_write:
  batch_wait: $BATCH_WAIT
  destinations: [{name: aggregator, url: "http://127.0.0.1:$gport/api/v1/write", codec: zstd}]
YML
  cat >"$d/agg.yml" <<YML
listen_address: 127.0.0.1:$gport
data_dir: $d/agg
storage: {wal_fsync: false}
rules:
  rule_files: [$d/rules.yml]
  evaluation_interval: ${EVAL}s
alerting:
  alertmanagers: [{url: "http://127.0.0.1:$am1"}]
YML
  cat >"$d/prom.yml" <<YML
global: {scrape_interval: ${SCRAPE}s, evaluation_interval: ${EVAL}s}
rule_files: [$d/rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$am2"]}]}]
scrape_configs:
  - job_name: nines-agent
    static_configs: [{targets: ["127.0.0.1:$aport"]}]
YML
  bench_start GPID "aggregator-$r" "$AGG" --config "$d/agg.yml"
  bench_start PPID_ "prometheus-$r" "$PROM" --config.file="$d/prom.yml" \
    --storage.tsdb.path="$d/prom" --web.listen-address="127.0.0.1:$pport"
  bench_wait_http "http://127.0.0.1:$gport/-/ready"
  bench_wait_http "http://127.0.0.1:$pport/-/ready"
  bench_start APID "agent-$r" "$AGENT" --config "$d/agent.yml"
  bench_wait_http "http://127.0.0.1:$aport/-/ready"
  out=$(python3 "$BENCH_TMP/driver.py" "$logfile" "base,spike$r" "spike$r" "$WARMUP" \
    "http://127.0.0.1:$am1" "http://127.0.0.1:$am2" "http://127.0.0.1:$gport" \
    "http://127.0.0.1:$pport")
  for pid in "$APID" "$GPID" "$PPID_"; do
    bench_stop "$pid"
    forget "$pid"
  done
  echo "$out" >>"$BENCH_TMP/runs.jsonl"
  python3 -c 'import json, sys
r = json.loads(sys.argv[1])
def f(n):
    sc = r["scraped"][n]
    sc = "?" if sc is None else "+%.2f s" % sc
    if r[n] is None:
        return "none (first sample with the spike: %s)" % sc
    return "%.2f s (first sample with the spike: %s, evaluation that fired: +%.2f s)" % (
        r[n], sc, r["fired"][n])
print("alert run %s: nines %s, prometheus %s" % (sys.argv[2], f("nines"), f("prometheus")))' \
    "$out" "$r" >&2
  rm -rf "$d"
done

IFS='|' read -r ours peer ours_send peer_send missing < <(python3 - "$BENCH_TMP/runs.jsonl" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
ok = [r for r in rs if r["nines"] is not None and r["prometheus"] is not None]
def col(f):
    return " ".join("%.3f" % f(r) for r in ok) or "-"
print("%s|%s|%s|%s|%d" % (col(lambda r: r["nines"]), col(lambda r: r["prometheus"]),
                          col(lambda r: r["nines"] - r["fired"]["nines"]),
                          col(lambda r: r["prometheus"] - r["fired"]["prometheus"]),
                          len(rs) - len(ok)))
PY
)
if [ "$ours" = - ]; then
  bench_log "alert: no run saw both alerts"
  exit 1
fi
[ "$missing" = 0 ] || bench_log "alert: $missing run(s) timed out (90 s) and are left out"
bench_emit alert "alert latency, log spike -> Alertmanager" s lower "" "$ours" \
  prometheus "$peer" "same agent and spike for both; scrape ${SCRAPE}s, eval ${EVAL}s, error ratio over rate[30s] > 5%, agent remote_write batch_wait $BATCH_WAIT, log metrics push_interval $PUSH"
bench_emit alert "evaluation timestamp -> Alertmanager" s lower "" "$ours_send" \
  prometheus "$peer_send" "startsAt of the alert (its evaluation's timestamp) to the poll that saw it"
