#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Structural checks of the non-code assets that promtool and amtool do not cover: Grafana
# dashboards (every panel queries something, variables exist, layout does not overlap),
# alert rules (severity, summary, description and a runbook that exists), SLO specs (Sloth and
# native) and Grafana provisioning files.
# Usage: check_assets.py SOURCE_DIR; prints one line per problem, exits 1 if there is any.
import glob
import json
import os
import re
import sys

import yaml

RUNBOOK_PREFIX = "https://github.com/nines-dev/nines/blob/main/"
BUILTIN_VARS = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms",
                "__from", "__to", "__all", "__name", "__auto"}
SEVERITIES = {"page", "ticket"}
SLOTH_WINDOW_RE = re.compile(r"\{\{\s*\.window\s*\}\}")

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


def check_dashboard(path, uids):
    where = os.path.relpath(path, SRC)
    try:
        d = json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError) as e:
        problem(where, f"does not parse: {e}")
        return
    if d.get("uid") in uids:
        problem(where, f"uid {d.get('uid')} is used twice")
    uids.add(d.get("uid"))
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        problem(where, "schemaVersion missing or older than 36")
    for k in ("title", "uid", "panels", "templating"):
        if not d.get(k):
            problem(where, f"no {k}")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus" \
            or ds.get("current", {}).get("value") != "nines":
        problem(where, "no datasource variable of type prometheus defaulting to uid nines")
    for v in variables.values():
        if v.get("type") == "query":
            q = v.get("definition") or v.get("query", {}).get("query")
            if not q:
                problem(where, f"variable {v.get('name')} has no query")
            check_var_refs(where, f"variable {v.get('name')}", q or "", variables)
    panels = []
    for p in d.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))
    cells = {}
    for p in panels:
        pw = f"{where} panel {p.get('id')} {p.get('title')!r}"
        gp = p.get("gridPos", {})
        for x in range(gp.get("x", 0), gp.get("x", 0) + gp.get("w", 0)):
            for y in range(gp.get("y", 0), gp.get("y", 0) + gp.get("h", 0)):
                if (x, y) in cells:
                    problem(pw, f"overlaps panel {cells[(x, y)]}")
                    break
                cells[(x, y)] = p.get("id")
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problem(pw, "datasource is not ${datasource}")
        targets = p.get("targets", [])
        exprs = [t.get("expr", "").strip() for t in targets]
        if not targets or not all(exprs):
            problem(pw, "has no target or a target with an empty expr")
        for e in exprs:
            check_var_refs(pw, "expr", e, variables)
            if e.count("(") != e.count(")") or e.count("{") != e.count("}"):
                problem(pw, f"unbalanced brackets in {e!r}")
        for t in targets:
            if t.get("datasource", {}).get("uid") not in (None, "${datasource}"):
                problem(pw, "target datasource is not ${datasource}")


def check_var_refs(where, what, text, variables):
    for m in re.finditer(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text):
        name = m.group(1)
        if name not in variables and name not in BUILTIN_VARS:
            problem(where, f"{what} uses undefined variable ${name}")


def check_rules(path):
    where = os.path.relpath(path, SRC)
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    names = set()
    for g in doc.get("groups", []):
        for r in g.get("rules", []):
            if "alert" not in r:
                continue
            rw = f"{where} alert {r['alert']}"
            names.add(r["alert"])
            if r.get("labels", {}).get("severity") not in SEVERITIES:
                problem(rw, f"severity is not one of {sorted(SEVERITIES)}")
            ann = r.get("annotations", {})
            for k in ("summary", "description", "runbook_url"):
                if not ann.get(k, "").strip():
                    problem(rw, f"no {k} annotation")
            check_runbook(rw, ann.get("runbook_url", ""))
    return names


def check_runbook(where, url):
    if not url.startswith(RUNBOOK_PREFIX):
        problem(where, f"runbook_url {url!r} does not start with {RUNBOOK_PREFIX}")
        return
    rel = url[len(RUNBOOK_PREFIX):]
    path = os.path.join(SRC, rel)
    if not rel.startswith("docs/runbooks/") or not os.path.isfile(path):
        problem(where, f"runbook {rel} does not exist")
        return
    text = open(path, encoding="utf-8").read()
    for section in ("## Symptoms", "## Impact", "## Diagnosis", "## Mitigation"):
        if section not in text:
            problem(where, f"runbook {rel} has no '{section}' section")


def check_sloth(path):
    where = os.path.relpath(path, SRC)
    for doc in yaml.safe_load_all(open(path, encoding="utf-8")):
        if doc is None:
            continue
        if doc.get("version") != "prometheus/v1" or not doc.get("service") or not doc.get("slos"):
            problem(where, "not a Sloth prometheus/v1 spec (version, service, slos)")
            continue
        for slo in doc["slos"]:
            sw = f"{where} slo {slo.get('name')}"
            obj = slo.get("objective")
            if not isinstance(obj, (int, float)) or not 0 < obj < 100:
                problem(sw, "objective must be a number in (0, 100)")
            ev = slo.get("sli", {}).get("events", {})
            for q in ("error_query", "total_query"):
                if not SLOTH_WINDOW_RE.search(ev.get(q, "")):
                    problem(sw, f"sli.events.{q} missing or without {{{{.window}}}}")
            al = slo.get("alerting", {})
            if not al.get("name"):
                problem(sw, "alerting.name missing")
            check_runbook(sw, al.get("annotations", {}).get("runbook_url", ""))
            for kind, sev in (("page_alert", "page"), ("ticket_alert", "ticket")):
                if al.get(kind, {}).get("labels", {}).get("severity") != sev:
                    problem(sw, f"alerting.{kind}.labels.severity is not {sev}")


def check_native(path):
    where = os.path.relpath(path, SRC)
    for doc in yaml.safe_load_all(open(path, encoding="utf-8")):
        if doc is None:
            continue
        if doc.get("version") != "nines/v1" or not doc.get("slos"):
            problem(where, "not a nines/v1 spec (version, slos)")
            continue
        for slo in doc["slos"]:
            sw = f"{where} slo {slo.get('name')}"
            if not (slo.get("service") or doc.get("service")):
                problem(sw, "no service")
            obj = slo.get("objective")
            if not isinstance(obj, (int, float)) or not 0 < obj < 100:
                problem(sw, "objective must be a number in (0, 100)")
            if len(slo.get("sli", {})) != 1:
                problem(sw, "sli must have exactly one of availability, latency, events, raw")
            al = slo.get("alerting", {})
            check_runbook(sw, al.get("annotations", {}).get("runbook_url", ""))
            for kind, sev in (("page_alert", "page"), ("ticket_alert", "ticket")):
                if al.get(kind, {}).get("labels", {}).get("severity") != sev:
                    problem(sw, f"alerting.{kind}.labels.severity is not {sev}")


def check_provisioning():
    p = os.path.join(SRC, "dashboards/provisioning/datasources/nines.yml")
    dss = yaml.safe_load(open(p, encoding="utf-8")).get("datasources", [])
    if not any(d.get("uid") == "nines" and d.get("type") == "prometheus"
               and d.get("url") == "http://nines-aggregator:9595" for d in dss):
        problem(p, "no prometheus datasource uid nines at http://nines-aggregator:9595")
    p = os.path.join(SRC, "dashboards/provisioning/dashboards/nines.yml")
    provs = yaml.safe_load(open(p, encoding="utf-8")).get("providers", [])
    if not any(pr.get("type") == "file" and pr.get("options", {}).get("path") for pr in provs):
        problem(p, "no file provider with a path")


def main():
    uids = set()
    dashboards = sorted(glob.glob(os.path.join(SRC, "dashboards/*.json")))
    if len(dashboards) < 5:
        problem("dashboards", f"expected at least 5 dashboards, found {len(dashboards)}")
    for p in dashboards:
        check_dashboard(p, uids)
    check_provisioning()
    check_rules(os.path.join(SRC, "alerts/nines-rules.yml"))
    specs = sorted(glob.glob(os.path.join(SRC, "alerts/slo/sloth/*.yml")))
    if len(specs) < 10:
        problem("alerts/slo/sloth", f"expected the demo's 10 services, found {len(specs)} specs")
    for p in specs:
        check_sloth(p)
    native = sorted(glob.glob(os.path.join(SRC, "alerts/slo/native/*.yml")))
    if len(native) < 5:
        problem("alerts/slo/native", f"expected the demo's 5 projects, found {len(native)} specs")
    for p in native:
        check_native(p)
    for p in problems:
        print(p)
    print(f"check_assets: {len(dashboards)} dashboards, {len(specs)} Sloth and {len(native)} native SLO files, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    sys.exit(main())
