#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Runs every variable and panel query of the Grafana dashboards against a Prometheus API the
# way Grafana would: variables resolved in order through /api/v1/label/<name>/values, Grafana's
# built-in intervals substituted, instant targets as /api/v1/query, the rest as query_range.
# Every query must parse (HTTP 200) and return at least one series unless its panel is on the
# allow-list; a panel with no metric query at all (a hard-coded empty panel) always fails.
"""usage: dashboard_queries.py URL START END STEP DASHBOARD.json... [--allow FILE:TITLE]...
[--pick VAR=VALUE]...  (--pick chooses a single-value variable's value; it must be one of the
values the variable's query returns)"""
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

RATE_INTERVAL = "1m"
DATA_PANELS_WITHOUT_TARGETS = {"row", "text", "dashlist", "news", "alertlist"}


def get(url, params):
    """GET url?params; returns (HTTP status, decoded JSON or None)."""
    full = url + "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(full, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"error": body.decode(errors="replace")}


def substitute(expr, values, step):
    """Replaces $var, ${var}, ${var:regex} and [[var]] the way Grafana interpolates them."""
    builtins = {
        "__rate_interval": RATE_INTERVAL,
        "__interval": "%ds" % step,
        "__interval_ms": str(step * 1000),
        "__range": "%ds" % values["__range_s"],
        "__range_s": str(values["__range_s"]),
        "__range_ms": str(values["__range_s"] * 1000),
    }
    allv = dict(values)
    allv.update(builtins)

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in allv:
            raise KeyError("undefined variable $" + name)
        return str(allv[name])

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", repl, expr)


def label_values(url, query, start, end):
    """Evaluates Grafana's label_values(selector, label) via the label values endpoint."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, re.S)
    if not m:
        m2 = re.fullmatch(r"\s*label_values\(\s*(\w+)\s*\)\s*", query)
        if not m2:
            return None, "unsupported variable query %r" % query
        sel, label = None, m2.group(1)
    else:
        sel, label = m.group(1), m.group(2)
    params = {"start": start, "end": end}
    if sel:
        params["match[]"] = sel
    status, body = get(url + "/api/v1/label/%s/values" % label, params)
    if status != 200 or body.get("status") != "success":
        return None, "HTTP %d %s" % (status, body.get("error"))
    return body["data"], None


def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))


def main():
    args = sys.argv[1:]
    allow = set()
    pick = {}
    files = []
    url, start, end, step = args[0], int(args[1]), int(args[2]), int(args[3])
    rest = args[4:]
    i = 0
    while i < len(rest):
        if rest[i] == "--allow":
            allow.add(rest[i + 1])
            i += 2
        elif rest[i] == "--pick":
            k, _, v = rest[i + 1].partition("=")
            pick[k] = v
            i += 2
        else:
            files.append(rest[i])
            i += 1
    fails = 0
    queries = 0
    used_allow = set()

    def fail(msg):
        nonlocal fails
        fails += 1
        print("FAIL " + msg)

    for f in files:
        name = f.rsplit("/", 1)[-1]
        d = json.load(open(f))
        values = {"__range_s": end - start}
        for v in d.get("templating", {}).get("list", []):
            vname = v["name"]
            if v["type"] == "datasource":
                values[vname] = "prometheus"
                continue
            if v["type"] != "query":
                fail("%s: variable %s has unsupported type %s" % (name, vname, v["type"]))
                continue
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            queries += 1
            try:
                q = substitute(q, values, step)
            except KeyError as e:
                fail("%s: variable %s: %s" % (name, vname, e))
                continue
            vals, err = label_values(url, q, start, end)
            if err:
                fail("%s: variable %s: %s" % (name, vname, err))
                continue
            if not vals:
                fail("%s: variable %s: %s returned no values" % (name, vname, q))
                values[vname] = "no-value"
                continue
            # Multi-value and All variables become a regex; single ones take a real value.
            if v.get("multi") or v.get("includeAll"):
                values[vname] = ".*"
            elif vname in pick:
                if pick[vname] not in vals:
                    fail("%s: variable %s: %r is not among %s" % (name, vname, pick[vname], vals))
                values[vname] = pick[vname]
            else:
                values[vname] = vals[0]
            print("ok   %s: variable %s = %s (%d values)" % (name, vname, values[vname], len(vals)))
        for p in panels(d.get("panels", [])):
            ptype = p.get("type")
            title = p.get("title", "")
            key = "%s:%s" % (name, title)
            targets = [t for t in p.get("targets", []) if not t.get("hide")]
            if ptype in DATA_PANELS_WITHOUT_TARGETS:
                continue
            if not targets or not any(t.get("expr", "").strip() for t in targets):
                fail("%s: panel %r has no query (hard-coded empty panel)" % (name, title))
                continue
            for t in targets:
                expr = t.get("expr", "")
                ds = (t.get("datasource") or p.get("datasource") or {}).get("uid", "")
                if ds not in ("${datasource}", "$datasource"):
                    fail("%s: panel %r target %s: datasource %r is not ${datasource}" %
                         (name, title, t.get("refId"), ds))
                if not re.search(r"[A-Za-z_:][A-Za-z0-9_:]*\s*\{|\b[a-z_:]+:[a-z0-9_:]+\b", expr):
                    fail("%s: panel %r: %r selects no series (hard-coded panel)" % (name, title, expr))
                    continue
                queries += 1
                try:
                    q = substitute(expr, values, step)
                except KeyError as e:
                    fail("%s: panel %r: %s" % (name, title, e))
                    continue
                if t.get("instant") and not t.get("range"):
                    status, body = get(url + "/api/v1/query", {"query": q, "time": end})
                else:
                    status, body = get(url + "/api/v1/query_range",
                                       {"query": q, "start": start, "end": end, "step": step})
                what = "%s: panel %r %s %s" % (name, title, t.get("refId"), q)
                if status != 200 or body.get("status") != "success":
                    fail("%s: HTTP %d %s" % (what, status, body.get("error")))
                    continue
                n = len(body["data"]["result"])
                if n == 0:
                    if key in allow:
                        used_allow.add(key)
                        print("skip %s: no data (allow-listed)" % what)
                    else:
                        fail("%s: no series" % what)
                    continue
                if key in allow:
                    print("note %s: allow-listed but returned data" % what)
                print("ok   %s: %d series" % (what, n))
    for key in sorted(allow - used_allow):
        print("note allow-list entry %r was not needed" % key)
    print("%d queries, %d failures" % (queries, fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
