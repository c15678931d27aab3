#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sloth's other prometheus/v1 example specs (tests/fixtures/slo/README.md), loaded unchanged by
# one nines aggregator, against one Prometheus 2.42 evaluating the rules that
# `nines-aggregator slo export` writes for them (equal to Sloth's examples/_gen output, which
# tests/integration/slo_sloth_gen.sh checks). tests/e2e/sloth_examples_data.py remote-writes
# the same 2.5 h of every example's series to both (distinct metric names: no interference),
# with a higher error ratio for the last 75 min. For every SLO and every SLI window, nines'
# slo:sli_error:ratio_rate<w> at its evaluation time t is compared with Prometheus evaluating
# the exported expression at t; so are the current burn rate, and the period SLI, period burn
# rate and budget remaining against Sloth's SLI expression over the whole data span.
# (getting-started is tests/integration/slo_sloth_diff.sh; it and multifile share an SLO id.)
#
# Tolerances (relative):
# - 1e-6 for a window inside one phase, and for the burn rate: both sides are exact there
#   (counters are linear, gauges constant within a phase).
# - 1e-3 for rate() windows that straddle the change of ratio: rate() may extrapolate the edge
#   interval, a bucketed ledger does not (here the samples sit on the window edges: observed
#   differences are ~1e-14).
# - 1e-2 for the gauge SLIs (home-wifi's count subqueries, raw-home-wifi's mean) over
#   straddling windows: nines folds `[30s:]` / `[30s]` per 30 s interval (its subquery step is
#   1 m, Prometheus's is its 5 s evaluation interval), so the two phases' points are weighed
#   by a point more or less at each edge (observed: at most 3e-3, the risk SLO's 2h window).
# - the period: Sloth's 30d series is a mean of recorded 5m ratios, which Prometheus holds only
#   for the minutes it has been running (docs/slo.md), so nines' period SLI is compared with
#   Sloth's SLI expression over the whole span instead, with the straddling tolerances above.
#   Budget remaining = 1 - period burn: its difference is checked relative to the burn.
source "$(dirname "$0")/lib.inc"
source "$(dirname "$0")/sloth.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
FIX=$NN_SOURCE_DIR/tests/fixtures/slo
SPECS=("$FIX/sloth-multifile.yml" "$FIX/sloth-no-alerts.yml" "$FIX/sloth-home-wifi.yml"
  "$FIX/sloth-raw-home-wifi.yml" "$FIX/sloth-kubernetes-apiserver.yml"
  "$FIX/sloth-custom-rule-group-interval.yml")
port=$(nn_free_port)
pport=$(nn_free_port)

sloth_start_with_history sloth_examples_data.py "${SPECS[@]}"
# --lint=none: multifile's two SLOs share an alert name and labels, and every SLO's 30d rule
# carries only sloth_window, as in Sloth's own output.
nn_check "promtool accepts the rules of all examples" promtool check rules --lint=none "$NN_TMP/sloth-rules.yml"
nn_check "the history was written" test -n "$phases"
# Restarted with the specs, the new ledgers are backfilled from the stored series.
{
  echo "slo:"
  echo "  spec_files:"
  for s in "${SPECS[@]}"; do echo "    - '$s'"; done
  echo "  evaluation_interval: 30s"
} >"$NN_TMP/agg.yml"
nn_start agg2 "$AGG" --config "$NN_TMP/agg.yml" --listen-address "127.0.0.1:$port" \
  --data-dir "$NN_TMP/agg"
nn_wait_http "http://127.0.0.1:$port/-/ready"

ready() {
  local i
  for ((i = 0; i < 150; i++)); do
    # every SLO (9) has its 5m ratio
    curl -fsS "http://127.0.0.1:$port/api/v1/query" --data-urlencode \
      "query=count(slo:sli_error:ratio_rate5m) == 9" | grep -q '"value"' && return 0
    sleep 0.5
  done
  return 1
}
nn_check "nines evaluated the 9 SLOs of the examples" ready

compare() {
  python3 - "http://127.0.0.1:$port" "http://127.0.0.1:$pport" "$NN_TMP/sloth-rules.yml" \
    "$phases" <<'PY'
import json, re, sys, time, urllib.parse, urllib.request
import yaml
nines, prom, rules, phases = sys.argv[1:5]
ph = json.loads(phases)

def q(base, expr, t=None):
    args = {"query": expr}
    if t is not None:
        args["time"] = "%.3f" % t
    u = base + "/api/v1/query?" + urllib.parse.urlencode(args)
    r = json.load(urllib.request.urlopen(u, timeout=30))
    assert r["status"] == "success", r
    return [float(s["value"][1]) for s in r["data"]["result"]]

# sloth_id -> {record name -> expr} from the exported rules (what Prometheus evaluates)
exprs = {}
for g in yaml.safe_load(open(rules))["groups"]:
    for r in g["rules"]:
        sid = r.get("labels", {}).get("sloth_id")
        if "record" in r and sid:
            exprs.setdefault(sid, {})[r["record"]] = r["expr"]
gauge_slis = ("home-wifi-",)  # count subqueries and raw means over gauges
fails = 0
worst = {}

def check(sid, name, mine, theirs, tol, scale=None):
    global fails
    if mine is None or theirs is None:
        print("%-44s %-34s no value (nines %r, prometheus %r)" % (sid, name, mine, theirs))
        fails += 1
        return
    den = max(abs(scale if scale is not None else theirs), 1e-12)
    rel = abs(mine - theirs) / den
    ok = rel <= tol
    fails += not ok
    key = (sid, name.split(" ")[0])
    worst[key] = max(worst.get(key, 0), rel)
    print("%-44s %-34s nines %.9g  prometheus %.9g  rel.diff %.1e  %s" %
          (sid, name, mine, theirs, rel, "ok" if ok else "MISMATCH (tolerance %.0e)" % tol))

def one(v):
    return v[0] if v else None

windows = (("5m", 300), ("30m", 1800), ("1h", 3600), ("2h", 7200), ("6h", 21600),
           ("1d", 86400), ("3d", 259200))
for sid in sorted(exprs):
    e = exprs[sid]
    sel = 'sloth_id="%s"' % sid
    ts = q(nines, "timestamp(slo:sli_error:ratio_rate5m{%s})" % sel)
    if not ts:
        print("%s: nines has no slo:sli_error:ratio_rate5m" % sid)
        fails += 1
        continue
    t = ts[0]
    span, spike_age = t - ph["start"], t - ph["spike_at"]
    gauge = sid.startswith(gauge_slis)
    budget = one(q(prom, e["slo:error_budget:ratio"], t))
    for w, secs in windows:
        mine = one(q(nines, "slo:sli_error:ratio_rate%s{%s}" % (w, sel), t))
        theirs = one(q(prom, e["slo:sli_error:ratio_rate" + w], t))
        inside = secs + 60 <= spike_age
        tol = 1e-6 if inside else 1e-2 if gauge else 1e-3
        check(sid, "slo:sli_error:ratio_rate" + w, mine, theirs, tol)
        if w == "5m" and theirs is not None and budget:
            check(sid, "slo:current_burn_rate:ratio",
                  one(q(nines, "slo:current_burn_rate:ratio{%s}" % sel, t)), theirs / budget, 1e-6)
    # The period: Sloth's SLI expression over the whole span of the data.
    rng = "%ds" % int(span)
    whole = re.sub(r"\[5m(:?)\]", lambda m: "[%s%s]" % (rng, m.group(1)),
                   e["slo:sli_error:ratio_rate5m"])
    theirs = one(q(prom, whole, t))
    tol = 1e-2 if gauge else 1e-3
    check(sid, "period SLI (whole span)", one(q(nines, "slo:sli_error:ratio_rate30d{%s}" % sel, t)),
          theirs, tol)
    if theirs is not None and budget:
        burn = theirs / budget
        check(sid, "slo:period_burn_rate:ratio",
              one(q(nines, "slo:period_burn_rate:ratio{%s}" % sel, t)), burn, tol)
        check(sid, "slo:period_error_budget_remaining", one(
            q(nines, "slo:period_error_budget_remaining:ratio{%s}" % sel, t)), 1 - burn, tol,
            scale=burn)
print("max relative difference per SLO and series:")
for (sid, name), v in sorted(worst.items()):
    print("  %-44s %-36s %.1e" % (sid, name, v))
# Prometheus really evaluates the exported rules of every example (default group interval).
for _ in range(40):
    rec = q(prom, "count(slo:sli_error:ratio_rate5m)")
    if rec and rec[0] >= 8:
        break
    time.sleep(0.5)
print("prometheus recorded slo:sli_error:ratio_rate5m for %r SLOs" % rec)
fails += not rec or rec[0] < 8
sys.exit(1 if fails else 0)
PY
}
nn_check "nines' SLIs, burn rates and budgets equal Prometheus evaluating Sloth's rules" compare
nn_finish
