#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Alert latency: from an error spike written to a container log until Alertmanager has the
# alert. One kubelet-named CRI file carries JSON access-log lines for S services (20 lines/s
# each, 2 % 5xx). nines-agent tails it; its logs -> metrics stage turns the lines into
# nines_log_http_requests_total{service,status,...} on the agent's /metrics. Two stacks watch
# that same counter at the same time, with the same settings:
#   nines: the agent scrapes its own /metrics every SCRAPE s and remote-writes (zstd,
#          batch_wait 1s) to nines-aggregator, which evaluates the rule every EVAL s and sends
#          to Alertmanager A;
#   peer:  Prometheus 2.42 scrapes the agent's /metrics every SCRAPE s, evaluates the same
#          rule every EVAL s and sends to Alertmanager B (0.25, same config).
# Rule (both): sum by (service) (rate(5xx[30s])) / sum by (service) (rate(all[30s])) > 0.05,
# no `for`. A run picks a service that has not spiked yet, waits a random 0-5 s (so that the
# spike lands at a random phase of the scrape and evaluation timers), then writes that
# service's lines at 200 lines/s with 50 % 5xx. Latency = the first moment a poll of
# Alertmanager's GET /api/v2/alerts (every 50 ms) lists the alert for that service, minus the
# moment the first spike lines were written. Both stacks see the same spike, so every run
# measures both. Runs: BENCH_ALERT_RUNS, default max(5, BENCH_RUNS) (BENCH_QUICK=1: BENCH_RUNS,
# shorter warm-up). Intervals: BENCH_ALERT_SCRAPE and BENCH_ALERT_EVAL (seconds, default 5).
# Both rule engines evaluate a group at Prometheus's aligned timestamps (a hash of the group's
# name and file), and both load the same file, so they evaluate at the same instants: the
# difference between them is whether the crossing sample has arrived by then (scrape vs
# scrape + remote write) and how fast the notifier delivers. The second figure isolates the
# latter: from the alert's startsAt (the timestamp of the evaluation that fired it) to the
# poll that saw it in Alertmanager.
source "$(dirname "$0")/lib.sh"

AGENT=$BENCH_BUILD/agent/nines-agent
AGG=$BENCH_BUILD/aggregator/nines-aggregator
AM=/usr/bin/prometheus-alertmanager
PROM=/usr/bin/prometheus
SCRAPE=${BENCH_ALERT_SCRAPE:-5}
EVAL=${BENCH_ALERT_EVAL:-5}
if [ "$BENCH_QUICK" = 1 ]; then
  RUNS=${BENCH_ALERT_RUNS:-$BENCH_RUNS} WARMUP=25
else
  RUNS=${BENCH_ALERT_RUNS:-$((BENCH_RUNS > 5 ? BENCH_RUNS : 5))} WARMUP=45
fi
for b in "$AGENT" "$AGG" "$AM" "$PROM"; do
  if [ ! -x "$b" ]; then
    bench_log "alert: $b is missing (bench/run builds nines; apt-get install prometheus prometheus-alertmanager)"
    exit 1
  fi
done

aport=$(bench_free_port) gport=$(bench_free_port) pport=$(bench_free_port)
am1=$(bench_free_port) am2=$(bench_free_port)
logdir=$BENCH_TMP/containers
mkdir -p "$logdir"
logfile=$logdir/web-7d9f00_bench_web-$(printf '%064d' 0 | tr 0 a).log

cat >"$BENCH_TMP/rules.yml" <<'YML'
groups:
  - name: bench-alert
    rules:
      - alert: LogErrorRatio
        expr: >-
          sum by (service) (rate(nines_log_http_requests_total{status=~"5.."}[30s]))
          / sum by (service) (rate(nines_log_http_requests_total[30s])) > 0.05
        labels: {severity: page}
YML
cat >"$BENCH_TMP/am.yml" <<'YML'
route: {receiver: none, group_by: [alertname, service], group_wait: 1s, group_interval: 1s}
receivers: [{name: none}]
YML
cat >"$BENCH_TMP/agent.yml" <<YML
listen_address: 127.0.0.1:$aport
data_dir: $BENCH_TMP/agent
logs:
  include: [$logdir/*.log]
  batch_wait: 1s
  destinations: [{name: aggregator, url: "http://127.0.0.1:$gport/loki/api/v1/push", codec: zstd}]
  metrics: {enabled: true}
scrape:
  scrape_interval: ${SCRAPE}s
  scrape_configs:
    - job_name: nines-agent
      static_configs: [{targets: ["127.0.0.1:$aport"]}]
remote_write:
  batch_wait: 1s
  destinations: [{name: aggregator, url: "http://127.0.0.1:$gport/api/v1/write", codec: zstd}]
YML
cat >"$BENCH_TMP/agg.yml" <<YML
listen_address: 127.0.0.1:$gport
data_dir: $BENCH_TMP/agg
storage: {wal_fsync: false}
rules:
  rule_files: [$BENCH_TMP/rules.yml]
  evaluation_interval: ${EVAL}s
alerting:
  alertmanagers: [{url: "http://127.0.0.1:$am1"}]
YML
cat >"$BENCH_TMP/prom.yml" <<YML
global: {scrape_interval: ${SCRAPE}s, evaluation_interval: ${EVAL}s}
rule_files: [$BENCH_TMP/rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$am2"]}]}]
scrape_configs:
  - job_name: nines-agent
    static_configs: [{targets: ["127.0.0.1:$aport"]}]
YML

bench_wait_quiet "alert"
bench_start AM1 am-nines "$AM" --config.file="$BENCH_TMP/am.yml" --storage.path="$BENCH_TMP/am1" \
  --web.listen-address="127.0.0.1:$am1" --cluster.listen-address=
bench_start AM2 am-prom "$AM" --config.file="$BENCH_TMP/am.yml" --storage.path="$BENCH_TMP/am2" \
  --web.listen-address="127.0.0.1:$am2" --cluster.listen-address=
bench_start GPID aggregator "$AGG" --config "$BENCH_TMP/agg.yml"
bench_start PPID_ prometheus "$PROM" --config.file="$BENCH_TMP/prom.yml" \
  --storage.tsdb.path="$BENCH_TMP/prom" --web.listen-address="127.0.0.1:$pport"
bench_wait_http "http://127.0.0.1:$am1/-/ready"
bench_wait_http "http://127.0.0.1:$am2/-/ready"
bench_wait_http "http://127.0.0.1:$gport/-/ready"
bench_wait_http "http://127.0.0.1:$pport/-/ready"
bench_start APID agent "$AGENT" --config "$BENCH_TMP/agent.yml"
bench_wait_http "http://127.0.0.1:$aport/-/ready"

services=$((RUNS + 1))
bench_log "alert: $RUNS runs, $services services, scrape ${SCRAPE}s, eval ${EVAL}s, warm-up ${WARMUP}s"
python3 - "$logfile" "$services" "$RUNS" "$WARMUP" "http://127.0.0.1:$am1" \
  "http://127.0.0.1:$am2" >"$BENCH_TMP/runs.jsonl" <<'PY'
import datetime, json, os, random, sys, threading, time, urllib.parse, urllib.request
path, nsvc, runs, warmup, am_nines, am_prom = sys.argv[1:7]
nsvc, runs, warmup = int(nsvc), int(runs), float(warmup)
BASE, SPIKE, TICK = 20, 200, 0.1  # lines/s per service; spike lines/s; writer period
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
state = {"spike": None, "t0": None}
lock = threading.Lock()
stop = threading.Event()

def line(svc, status):
    now = time.time_ns()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + ".%09dZ" % (now % 10**9)
    body = json.dumps({"service": svc, "method": "GET", "path": "/api/items", "status": status,
                       "duration_ms": 12})
    return "%s stdout F %s\n" % (ts, body)

def writer():
    cnt = {}  # lines written per service
    acc = {}  # fractional lines carried per service
    first = True
    while not stop.is_set():
        out = []
        spike = state["spike"]
        for i in range(nsvc):
            svc = "svc%d" % i
            rate = SPIKE if svc == spike else BASE
            acc[svc] = acc.get(svc, 0.0) + rate * TICK
            while acc[svc] >= 1:
                acc[svc] -= 1
                n = cnt[svc] = cnt.get(svc, 0) + 1
                if svc == spike:
                    status = 500 if n % 2 else 200
                else:  # 2 % errors; the first tick writes one 5xx per service so the series exists
                    status = 500 if (first and acc[svc] < 1) or n % 50 == 0 else 200
                out.append(line(svc, status))
        with lock:
            if spike is not None and state["t0"] is None:
                state["t0"] = time.time()
            os.write(fd, "".join(out).encode())
        first = False
        time.sleep(TICK)

def has_alert(am, svc):
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
for svc in ("svc%d" % i for i in range(nsvc)):  # no alert may fire on the baseline
    for am in (am_nines, am_prom):
        if has_alert(am, svc):
            print("baseline of %s already alerting at %s" % (svc, am), file=sys.stderr)
            sys.exit(1)
for r in range(runs):
    svc = "svc%d" % (r + 1)
    time.sleep(random.uniform(0, 5))
    with lock:
        state["t0"] = None
        state["spike"] = svc
    while state["t0"] is None:
        time.sleep(0.005)
    t0 = state["t0"]
    seen = {"nines": None, "prometheus": None}
    starts = {}
    deadline = t0 + 90
    while time.time() < deadline and None in seen.values():
        for name, am in (("nines", am_nines), ("prometheus", am_prom)):
            if seen[name] is None:
                a = has_alert(am, svc)
                if a:
                    seen[name] = time.time() - t0
                    at = datetime.datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00"))
                    starts[name] = at.timestamp() - t0
        time.sleep(0.05)
    with lock:
        state["spike"] = None
    rec = {"run": r, "service": svc, "nines": seen["nines"], "prometheus": seen["prometheus"],
           "fired": starts, "t0": t0}
    print(json.dumps(rec), flush=True)
    def fmt(name):
        if seen[name] is None:
            return "none"
        return "%.2f s (evaluation that fired: +%.2f s)" % (seen[name], starts[name])
    print("run %d (%s): nines %s, prometheus %s" % (r, svc, fmt("nines"), fmt("prometheus")),
          file=sys.stderr, flush=True)
    time.sleep(2)
stop.set()
t.join()
PY
sed 's/^/  /' "$BENCH_TMP/runs.jsonl" >&2

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
  prometheus "$peer" "same agent and spike for both; scrape ${SCRAPE}s, eval ${EVAL}s, error ratio over rate[30s] > 5%, agent remote_write batch_wait 1s"
bench_emit alert "evaluation timestamp -> Alertmanager" s lower "" "$ours_send" \
  prometheus "$peer_send" "startsAt of the alert (its evaluation's timestamp) to the poll that saw it"
