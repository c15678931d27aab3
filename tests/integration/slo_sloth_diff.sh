#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sloth's own getting-started spec, loaded unchanged by nines, against Prometheus 2.42
# evaluating the rules Sloth generates for it (nines' `slo export` output, which matches
# Sloth's examples/_gen/getting-started.yml rule for rule). The same 2.5 h of request
# counters (1% errors, then 5% for the last 75 min) are remote-written to both. For every
# SLI window the data covers, nines' slo:sli_error:ratio_rate<w> at its evaluation time must
# equal Prometheus evaluating Sloth's expression at that same instant; so must the burn rate
# and the budget remaining derived from them, and nines' period SLI must equal the
# traffic-weighted error ratio over all data (Sloth's own 30d series is a mean of recorded 5m
# ratios, which Prometheus only holds for the minutes it has been running: see docs/slo.md).
source "$(dirname "$0")/lib.inc"
source "$(dirname "$0")/sloth.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
SPEC=$NN_SOURCE_DIR/tests/fixtures/slo/sloth-getting-started.yml
port=$(nn_free_port)
pport=$(nn_free_port)

sloth_start_with_history sloth_data.py "$SPEC"
nn_check "promtool accepts the Sloth rules" promtool check rules "$NN_TMP/sloth-rules.yml"
# Restarted with the spec, its new ledger is backfilled from the stored series while live
# samples go on arriving.
cat >"$NN_TMP/agg.yml" <<YML
slo:
  spec_files: ['$SPEC']
  evaluation_interval: 30s
YML
nn_start agg2 "$AGG" --config "$NN_TMP/agg.yml" --listen-address "127.0.0.1:$port" \
  --data-dir "$NN_TMP/agg"
nn_wait_http "http://127.0.0.1:$port/-/ready"

sel='sloth_id="myservice-requests-availability"'
ready() {
  local i
  for ((i = 0; i < 150; i++)); do
    curl -fsS "http://127.0.0.1:$port/api/v1/query" --data-urlencode \
      "query=slo:sli_error:ratio_rate5m{$sel}" | grep -q '"value"' && return 0
    sleep 0.5
  done
  return 1
}
nn_check "nines evaluated the Sloth SLO" ready

compare() {
  python3 - "http://127.0.0.1:$port" "http://127.0.0.1:$pport" "$SPEC" "$phases" <<'PY'
import json, re, sys, urllib.parse, urllib.request
nines, prom, spec, phases = sys.argv[1:5]
ph = json.loads(phases)
def q(base, expr, t=None):
    args = {"query": expr}
    if t is not None:
        args["time"] = "%.3f" % t
    u = base + "/api/v1/query?" + urllib.parse.urlencode(args)
    r = json.load(urllib.request.urlopen(u, timeout=30))
    assert r["status"] == "success", r
    res = r["data"]["result"]
    return [(float(s["value"][0]), float(s["value"][1])) for s in res]
text = open(spec).read()
err_q = re.search(r"error_query: (.*)", text).group(1).strip()
tot_q = re.search(r"total_query: (.*)", text).group(1).strip()
sel = 'sloth_id="myservice-requests-availability"'
# The instant nines evaluated at (its samples carry the aligned evaluation timestamp).
t = q(nines, "timestamp(slo:sli_error:ratio_rate5m{%s})" % sel)[0][1]
span = t - ph["start"]
spike_age = t - ph["spike_at"]
budget = (100 - 99.9) / 100
fails = 0
def check(name, mine, theirs, tol):
    global fails
    rel = abs(mine - theirs) / max(abs(theirs), 1e-12)
    ok = rel <= tol
    fails += not ok
    print("%-34s nines %.9f  prometheus %.9f  rel.diff %.1e  %s" %
          (name, mine, theirs, rel, "ok" if ok else "MISMATCH (tolerance %.0e)" % tol))
print("evaluation time %.0f: data span %.0f s, spike for the last %.0f s" % (t, span, spike_age))
for w, secs in (("5m", 300), ("30m", 1800), ("1h", 3600), ("2h", 7200)):
    mine = q(nines, "slo:sli_error:ratio_rate%s{%s}" % (w, sel), t)
    theirs = q(prom, "(%s)\n/\n(%s)" % (err_q.replace("{{.window}}", w),
                                        tot_q.replace("{{.window}}", w)), t)
    if not mine or not theirs:
        print("window %s: no value (nines %r, prometheus %r)" % (w, mine, theirs))
        fails += 1
        continue
    # Inside one phase both are exact. A window that straddles the change of error ratio
    # differs by rate()'s extrapolation of the edge interval (one 15 s step of the older
    # ratio), which Prometheus applies and a bucketed ledger does not.
    tol = 1e-6 if secs <= spike_age else 1e-3
    check("slo:sli_error:ratio_rate" + w, mine[0][1], theirs[0][1], tol)
    if w == "5m":
        burn = q(nines, "slo:current_burn_rate:ratio{%s}" % sel, t)
        check("slo:current_burn_rate:ratio", burn[0][1], theirs[0][1] / budget, 1e-6)
# The period: nines weighs by traffic over all stored data.
mine = q(nines, "slo:sli_error:ratio_rate30d{%s}" % sel, t)
rng = "%ds" % int(span)
theirs = q(prom, "sum(increase(http_request_duration_seconds_count{job=\"myservice\",code=~\"(5..|429)\"}[%s])) / sum(increase(http_request_duration_seconds_count{job=\"myservice\"}[%s]))" % (rng, rng), t)
check("period SLI (traffic-weighted)", mine[0][1], theirs[0][1], 1e-3)
left = q(nines, "slo:period_error_budget_remaining:ratio{%s}" % sel, t)
check("slo:period_error_budget_remaining", left[0][1], 1 - mine[0][1] / budget, 1e-6)
# Prometheus really evaluates the generated rules: its recorded series exist and agree with
# the expression it was given at its own evaluation time.
import time
for _ in range(40):  # its first evaluation after the reload may still be due
    rec = q(prom, "slo:sli_error:ratio_rate5m{%s}" % sel)
    if rec:
        break
    time.sleep(0.5)
fails += not rec
print("prometheus recorded slo:sli_error:ratio_rate5m: %r" % rec[:1])
sys.exit(1 if fails else 0)
PY
}
nn_check "nines' SLIs equal Prometheus evaluating Sloth's rules" compare
nn_finish
