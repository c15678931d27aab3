#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `nines-aggregator slo export --format prometheus` of each of Sloth's prometheus/v1 example
# specs (tests/fixtures/slo/sloth-*.yml) against the rules Sloth itself generated for them
# (tests/fixtures/slo/sloth-gen/, Sloth's examples/_gen): the same groups, and in each the
# same recording rules and alerts with the same expressions (whitespace removed), labels and
# annotations. Not compared: Sloth's `cmd: examplesgen.sh` label (added by Sloth's generator
# script, not by the spec), sloth_version, sloth_objective on sloth_slo_info (older Sloth
# releases lack it) and `for:` (Sloth writes it only through its alert_for plugin).
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
FIX=$NN_SOURCE_DIR/tests/fixtures/slo

compare() {
  local spec=$FIX/sloth-$1.yml gen=$FIX/sloth-gen/$1.yml
  "$AGG" slo export --format prometheus "$spec" >"$NN_TMP/$1.yml" 2>/dev/null || return 1
  python3 - "$NN_TMP/$1.yml" "$gen" <<'PY'
import re, sys
import yaml

def rules(path):
    out = {}
    groups = []
    for doc in yaml.safe_load_all(open(path)):
        for g in (doc or {}).get("groups", []):
            groups.append((g["name"], str(g.get("interval", ""))))
            for r in g["rules"]:
                lab = dict(r.get("labels") or {})
                sid = lab.get("sloth_id") or re.search(r'sloth_id="([^"]*)"', r["expr"]).group(1)
                if "record" in r:
                    key = ("record", r["record"], sid, str(lab.get("sloth_window", "")))
                else:
                    key = ("alert", r["alert"], sid, lab.get("sloth_severity"))
                for k in ("cmd", "sloth_version"):
                    lab.pop(k, None)
                out[key] = {"expr": re.sub(r"\s+", "", r["expr"]),
                            "labels": {k: str(v) for k, v in lab.items()},
                            "annotations": {k: str(v) for k, v in
                                            (r.get("annotations") or {}).items()}}
    return groups, out

mine_g, mine = rules(sys.argv[1])
sloth_g, sloth = rules(sys.argv[2])
bad = 0
if mine_g != sloth_g:
    print("groups differ:\n  nines %r\n  sloth %r" % (mine_g, sloth_g))
    bad += 1
for key in sorted(set(mine) | set(sloth), key=str):
    m, s = mine.get(key), sloth.get(key)
    if m is None or s is None:
        print("%s only in %s" % (key, "sloth" if m is None else "nines"))
        bad += 1
        continue
    if "sloth_objective" not in s["labels"]:
        m["labels"].pop("sloth_objective", None)
    for part in ("expr", "labels", "annotations"):
        if m[part] != s[part]:
            print("%s %s differs:\n  nines %r\n  sloth %r" % (key, part, m[part], s[part]))
            bad += 1
print("%d rules in %d groups compared, %d differences" % (len(sloth), len(sloth_g), bad))
sys.exit(1 if bad else 0)
PY
}
for ex in getting-started multifile home-wifi raw-home-wifi kubernetes-apiserver no-alerts; do
  [ -f "$FIX/sloth-gen/$ex.yml" ] || continue
  nn_check "slo export of Sloth's $ex example equals Sloth's generated rules" compare "$ex"
done
nn_check "Sloth's custom rule group intervals are exported" grep -q "^  interval: 4m" <("$AGG" slo \
  export --format prometheus "$FIX/sloth-custom-rule-group-interval.yml")
nn_finish
