#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Replays the requests Grafana's Prometheus data source sends (health check, flavour detection,
# metric browser, autocomplete, queries as GET and as POST form with Grafana's float-second
# times, exemplars, rules, alerts) against nines and against Prometheus 2.42 holding the same
# samples. Checks status codes, the JSON envelope and shapes, the wire formatting of values
# and timestamps (kept as raw JSON text), and that nines answers what Prometheus answers.
"""usage: grafana_api.py NINES_URL PROM_URL START END  (START/END: Unix seconds of a window
both stores hold completely)"""
import json
import math
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

FAILS = 0
CHECKS = 0


class Num(str):
    """A JSON number kept as its source text, so formatting can be checked byte for byte."""


def check(desc, cond, detail=""):
    global FAILS, CHECKS
    CHECKS += 1
    if cond:
        print("ok   " + desc)
    else:
        FAILS += 1
        print("FAIL " + desc + (": " + detail if detail else ""))
    return cond


def call(base, path, params=None, method="GET"):
    """Returns (status, content type, raw body, parsed JSON with numbers as Num or None)."""
    data = urllib.parse.urlencode(params or [], doseq=True)
    url = base + path
    body = None
    headers = {"User-Agent": "Grafana/11.3.0", "Accept": "application/json, text/plain, */*"}
    if method == "POST":
        body = data.encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif data:
        url += "?" + data
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, ctype, raw = r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        status, ctype, raw = e.code, e.headers.get("Content-Type", ""), e.read()
    try:
        doc = json.loads(raw, parse_float=Num, parse_int=Num)
    except ValueError:
        doc = None
    return status, ctype, raw, doc


def fmt_float(s):
    """True when s is a sample value as Prometheus writes it (Go's shortest 'f'/'e' form)."""
    if s in ("NaN", "+Inf", "-Inf"):
        return True
    try:
        v = float(s)
    except ValueError:
        return False
    if v == 0:
        return s in ("0", "-0")
    a = abs(v)
    if a < 1e-6 or a >= 1e21:
        return re.fullmatch(r"-?\d(\.\d+)?e[+-]\d{2,3}", s) is not None and float(s) == v
    return re.fullmatch(r"-?\d+(\.\d+)?", s) is not None and not re.search(r"\.\d*0$", s)


def fmt_ts(t):
    """Timestamps: a JSON number, seconds, then exactly 3 ms digits only when ms != 0."""
    return isinstance(t, Num) and re.fullmatch(r"\d+(\.\d{2}[1-9]|\.\d[1-9]\d|\.[1-9]\d\d)?", t)


def point_ok(p):
    return (isinstance(p, list) and len(p) == 2 and fmt_ts(p[0]) and isinstance(p[1], str)
            and not isinstance(p[1], Num) and fmt_float(p[1]))


def labels_key(m):
    return sorted(m.items())


def result_ok(data, want_type):
    """Checks data = {resultType, result} and the shape of every element."""
    if not isinstance(data, dict) or set(data) - {"resultType", "result", "stats"}:
        return "data keys %r" % (list(data) if isinstance(data, dict) else data)
    if data.get("resultType") != want_type:
        return "resultType %r, want %r" % (data.get("resultType"), want_type)
    r = data["result"]
    if want_type == "scalar" or want_type == "string":
        # Go's Scalar/String.MarshalJSON: [float64(t)/1000 as a plain JSON number, "value"
        # in strconv 'f' layout] - no 3-digit padding, never an exponent.
        ok = (isinstance(r, list) and len(r) == 2 and isinstance(r[0], Num)
              and re.fullmatch(r"-?\d+(\.\d*[1-9])?", r[0]) and isinstance(r[1], str)
              and not isinstance(r[1], Num))
        if ok and want_type == "scalar":
            ok = r[1] in ("NaN", "+Inf", "-Inf") or (
                re.fullmatch(r"-?\d+(\.\d*[1-9])?", r[1]) is not None)
        return None if ok else "bad %s %r" % (want_type, r)
    if not isinstance(r, list):
        return "result is not a list"
    for s in r:
        key = "value" if want_type == "vector" else "values"
        if set(s) != {"metric", key}:
            return "series keys %r" % list(s)
        if not all(isinstance(v, str) and not isinstance(v, Num) for v in s["metric"].values()):
            return "label values must be strings: %r" % s["metric"]
        pts = [s["value"]] if want_type == "vector" else s["values"]
        if not pts:
            return "series without points"
        for p in pts:
            if not point_ok(p):
                return "bad point %r" % (p,)
        if want_type == "matrix":
            ts = [float(p[0]) for p in pts]
            if ts != sorted(set(ts)):
                return "points not in time order"
    if want_type == "matrix":
        keys = [labels_key(s["metric"]) for s in r]
        if keys != sorted(keys):
            return "matrix series not sorted by labels"
    return None


def envelope_ok(status, ctype, doc, want_status=200):
    if status != want_status:
        return "HTTP %d, want %d (%r)" % (status, want_status, doc)
    if not ctype.startswith("application/json"):
        return "Content-Type %r" % ctype
    if not isinstance(doc, dict):
        return "body is not a JSON object"
    allowed = {"status", "data", "warnings", "infos"} if want_status == 200 else \
        {"status", "errorType", "error", "data", "warnings"}
    if set(doc) - allowed:
        return "unexpected keys %r" % sorted(set(doc) - allowed)
    if want_status == 200 and (doc.get("status") != "success" or "data" not in doc):
        return "not a success envelope: %r" % doc
    if want_status != 200 and doc.get("status") != "error":
        return "not an error envelope"
    return None


def close(a, b):
    """Structural equality of two results with sample values equal to 1e-9 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, Num) or isinstance(b, Num):
        return a == b
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return False
    if math.isnan(x) and math.isnan(y):
        return True
    if x == y:
        return False  # the same number written differently
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y))


def sorted_result(data):
    r = data["result"]
    if isinstance(r, list) and r and isinstance(r[0], dict):
        return dict(data, result=sorted(r, key=lambda s: labels_key(s["metric"])))
    return data


def main():
    nines, prom, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    # Grafana's formatting: strconv.FormatFloat(ms/1000, 'f', -1, 64); a non-round start
    # makes every step timestamp carry milliseconds.
    fs = lambda x: repr(float(x)).rstrip("0").rstrip(".") if "e" not in repr(float(x)) else str(x)
    s_start, s_end = fs(start + 0.123), fs(end)
    # Range queries start once every rate window lies after the series' first sample:
    # Prometheus 2.42 and 3.x extrapolate a counter that starts inside the window differently.
    r_start = fs(start + 6.123)
    both = {}

    def both_call(name, path, params=None, method="GET", want=200):
        res = {}
        for who, base in (("nines", nines), ("prometheus", prom)):
            res[who] = call(base, path, params, method)
        st, ct, raw, doc = res["nines"]
        err = envelope_ok(st, ct, doc, want)
        check("%s: %s %s answers %d with the Prometheus envelope" % (name, method, path, want),
              err is None, err or "")
        pst = res["prometheus"][0]
        check("%s: Prometheus agrees on HTTP %d" % (name, want), pst == want, "prometheus %d" % pst)
        both[name] = res
        return doc, res["prometheus"][3]

    # Health check: instant 1+1 at the end of the 1 s..4 s range.
    doc, pdoc = both_call("health check", "/api/v1/query", [("query", "1+1"), ("time", "4")])
    if doc:
        check("health check: scalar [4,\"2\"]", raw_equal(both["health check"]),
              both["health check"]["nines"][2].decode())

    # Flavour detection.
    doc, _ = both_call("buildinfo", "/api/v1/status/buildinfo")
    if doc and isinstance(doc.get("data"), dict):
        d = doc["data"]
        check("buildinfo: no features field (else Grafana assumes Mimir)", "features" not in d)
        check("buildinfo: version is semver", re.fullmatch(r"\d+\.\d+\.\d+.*", d.get("version", "")))
        check("buildinfo: fields Grafana decodes are strings",
              all(isinstance(d.get(k), str) for k in ("version", "revision", "branch", "buildUser",
                                                     "buildDate", "goVersion")), repr(d))

    # Metric browser and autocomplete: results must equal Prometheus's for the same data.
    se = [("start", s_start), ("end", s_end)]
    job = '{job="prometheus"}'
    lists = [
        ("metric names", "/api/v1/label/__name__/values", se),
        ("metric names for a job", "/api/v1/label/__name__/values", se + [("match[]", job)]),
        ("labels with match[]", "/api/v1/labels",
         se + [("match[]", job), ("match[]", 'up{job="prometheus"}')]),
        ("labels without match[]", "/api/v1/labels", se),
        ("label values with match[]", "/api/v1/label/instance/values",
         se + [("match[]", 'prometheus_build_info{job="prometheus"}')]),
        ("label values of handler", "/api/v1/label/handler/values",
         se + [("match[]", 'prometheus_http_requests_total{job="prometheus"}')]),
        ("label values of a missing label", "/api/v1/label/no_such_label/values", se),
    ]
    for name, path, params in lists:
        for method in ("GET", "POST") if path == "/api/v1/labels" else ("GET",):
            doc, pdoc = both_call("%s (%s)" % (name, method), path, params, method)
            if not doc or not pdoc:
                continue
            d = doc["data"]
            check("%s: a sorted list of strings" % name,
                  isinstance(d, list) and all(isinstance(x, str) and not isinstance(x, Num) for x in d)
                  and d == sorted(d), repr(d)[:200])
            check("%s: equals Prometheus's (%d entries)" % (name, len(pdoc["data"])),
                  d == pdoc["data"], "nines-only %s prometheus-only %s" % (
                      sorted(set(d) - set(pdoc["data"]))[:10], sorted(set(pdoc["data"]) - set(d))[:10]))
    check("metric names: the job's metrics are there",
          "prometheus_build_info" in (both["metric names (GET)"]["nines"][3] or {}).get("data", []))

    for method in ("GET", "POST"):
        name = "series (%s)" % method
        params = [("match[]", 'up{job="prometheus"}'), ("match[]", 'prometheus_http_requests_total')] + \
            se + [("limit", "40000")]
        doc, pdoc = both_call(name, "/api/v1/series", params, method)
        if doc and pdoc:
            d = doc["data"]
            check("%s: a list of label sets" % name,
                  isinstance(d, list) and d and all(isinstance(x, dict) and "__name__" in x for x in d))
            key = lambda m: sorted(m.items())
            check("%s: equals Prometheus's (%d series)" % (name, len(pdoc["data"])),
                  sorted(d, key=key) == sorted(pdoc["data"], key=key))

    doc, _ = both_call("metadata", "/api/v1/metadata")
    if doc:
        d = doc["data"]
        check("metadata: {metric: [{type, help, unit}]}", isinstance(d, dict) and all(
            isinstance(v, list) and all(isinstance(e, dict) and {"type", "help", "unit"} <= set(e)
                                        for e in v) for v in d.values()), repr(d)[:200])

    # Queries as GET and as POST form.
    instant = [
        ('up{job="prometheus"}', "vector"),
        ('prometheus_build_info', "vector"),
        ('sum by (job) (rate(prometheus_http_requests_total[10s]))', "vector"),
        ('scalar(up{job="prometheus"})', "scalar"),
        ('prometheus_http_requests_total{job="prometheus"}[5s]', "matrix"),
        ('"grafana"', "string"),
        ('1e-7', "scalar"),
        ('up{job="prometheus"} * 1e-7', "vector"),
        ('1e22', "scalar"),
        ('1/0', "scalar"),
    ]
    t_inst = fs(end - 0.5)
    for q, want in instant:
        for method in ("GET", "POST"):
            name = "query %s (%s)" % (q, method)
            doc, pdoc = both_call(name, "/api/v1/query", [("query", q), ("time", t_inst)], method)
            if doc and pdoc:
                err = result_ok(doc["data"], want)
                check("%s: %s shape and formatting" % (name, want), err is None, err or "")
                check("%s: same as Prometheus" % name,
                      close(sorted_result(doc["data"]), sorted_result(pdoc["data"])),
                      "\n  nines %s\n  prom  %s" % (both[name]["nines"][2][:300],
                                                     both[name]["prometheus"][2][:300]))
    ranged = [
        'up{job="prometheus"}',
        'prometheus_http_requests_total{job="prometheus",code="200"}',
        'sum by (handler) (rate(prometheus_http_requests_total[5s]))',
        'time()',
        '1e22',
    ]
    for q in ranged:
        for method in ("GET", "POST"):
            name = "query_range %s (%s)" % (q, method)
            doc, pdoc = both_call(name, "/api/v1/query_range", [
                ("query", q), ("start", r_start), ("end", s_end), ("step", "2.5")], method)
            if doc and pdoc:
                err = result_ok(doc["data"], "matrix")
                check("%s: matrix shape and formatting" % name, err is None, err or "")
                check("%s: same as Prometheus" % name, close(doc["data"], pdoc["data"]),
                      "\n  nines %s\n  prom  %s" % (both[name]["nines"][2][:300],
                                                     both[name]["prometheus"][2][:300]))
    raw = both['query_range time() (GET)']["nines"][2].decode()
    check("query_range: timestamps carry 3 ms digits", re.search(r"\[\d+\.123,", raw), raw[:200])

    doc, pdoc = both_call("exemplars", "/api/v1/query_exemplars",
                          [("query", 'up{job="prometheus"}'), ("start", s_start), ("end", s_end)])
    if doc:
        check("exemplars: a list of {seriesLabels, exemplars}", isinstance(doc["data"], list) and all(
            set(e) == {"seriesLabels", "exemplars"} for e in doc["data"]))
        check("exemplars: same as Prometheus", doc["data"] == pdoc["data"])

    # Rules and alerts: both run an always-firing rule (named differently, so Prometheus's
    # ALERTS series that reach nines by remote write do not collide with nines' own).
    doc, pdoc = both_call("rules", "/api/v1/rules")
    if doc and pdoc:
        g, pg = doc["data"].get("groups"), pdoc["data"].get("groups")
        if check("rules: one group each", isinstance(g, list) and len(g) == 1 and len(pg) == 1):
            check("rules: group keys as Prometheus's", set(g[0]) == set(pg[0]),
                  "%s vs %s" % (sorted(g[0]), sorted(pg[0])))
            r, pr = g[0]["rules"][0], pg[0]["rules"][0]
            check("rules: alerting rule keys as Prometheus's", set(r) == set(pr),
                  "%s vs %s" % (sorted(r), sorted(pr)))
            check("rules: the rule is firing and healthy",
                  r.get("state") == "firing" and r.get("health") == "ok" and r.get("type") == "alerting",
                  repr(r)[:300])
            if r.get("alerts") and pr.get("alerts"):
                check("rules: alert keys as Prometheus's", set(r["alerts"][0]) == set(pr["alerts"][0]))
    doc, pdoc = both_call("alerts", "/api/v1/alerts")
    if doc and pdoc:
        a, pa = doc["data"].get("alerts"), pdoc["data"].get("alerts")
        if check("alerts: one firing alert each", isinstance(a, list) and len(a) == 1 and len(pa) == 1,
                 repr(doc["data"])[:300]):
            check("alerts: keys as Prometheus's", set(a[0]) == set(pa[0]),
                  "%s vs %s" % (sorted(a[0]), sorted(pa[0])))
            check("alerts: value formatted as Prometheus does", a[0].get("value") == pa[0].get("value"),
                  "%r vs %r" % (a[0].get("value"), pa[0].get("value")))
            check("alerts: state firing", a[0].get("state") == "firing")

    # Errors.
    errors = [
        ("parse error", "/api/v1/query", [("query", "sum(up"), ("time", t_inst)], 400),
        ("parse error (POST)", "/api/v1/query", [("query", "rate(up[5m]"), ("time", t_inst)], 400),
        ("empty matcher", "/api/v1/query", [("query", '{__name__=~".*"}')], 400),
        ("step=0", "/api/v1/query_range", [("query", "up"), ("start", s_start), ("end", s_end),
                                           ("step", "0")], 400),
        ("too many points", "/api/v1/query_range", [("query", "up"), ("start", "0"), ("end", "20000"),
                                                    ("step", "1")], 400),
        ("end before start", "/api/v1/query_range", [("query", "up"), ("start", s_end),
                                                     ("end", s_start), ("step", "1")], 400),
        ("bad time", "/api/v1/query", [("query", "up"), ("time", "yesterday")], 400),
        ("bad start", "/api/v1/query_range", [("query", "up"), ("start", "x"), ("end", s_end),
                                              ("step", "1")], 400),
        ("bad step", "/api/v1/query_range", [("query", "up"), ("start", s_start), ("end", s_end),
                                             ("step", "fast")], 400),
        ("bad labels start", "/api/v1/labels", [("start", "soon")], 400),
        ("bad series end", "/api/v1/series", [("match[]", "up"), ("end", "x")], 400),
        ("range vector in range query", "/api/v1/query_range",
         [("query", "up[5m]"), ("start", s_start), ("end", s_end), ("step", "1")], 400),
        ("series without match[]", "/api/v1/series", se, 400),
        ("many-to-many", "/api/v1/query",
         [("query", 'prometheus_http_requests_total + on(job) prometheus_http_requests_total'),
          ("time", t_inst)], 422),
    ]
    for name, path, params, want in errors:
        method = "POST" if "POST" in name else "GET"
        doc, pdoc = both_call("error " + name, path, params, method, want)
        if doc and pdoc:
            et = "bad_data" if want == 400 else "execution"
            check("error %s: errorType %s" % (name, et), doc.get("errorType") == et, repr(doc))
            # The duplicate series of a many-to-many error are listed in storage order.
            same = lambda e: re.sub(r": \[.*\];", ": [...];", e or "")
            check("error %s: message as Prometheus's" % name,
                  same(doc.get("error")) == same(pdoc.get("error")),
                  "\n  nines %r\n  prom  %r" % (doc.get("error"), pdoc.get("error")))
    perr = both.get("error parse error", {}).get("nines", (0, 0, 0, {}))[3] or {}
    check("parse error: 'invalid parameter \"query\": 1:N: parse error: ...'",
          re.match(r'invalid parameter "query": 1:\d+: parse error: ', perr.get("error", "")),
          repr(perr))
    st, _, raw, _ = call(nines, "/api/v1/no_such_endpoint")
    check("unknown path: 404", st == 404, "HTTP %d" % st)
    st, _, raw, _ = call(nines, "/api/v2/query")
    check("unknown API version: 404", st == 404, "HTTP %d" % st)

    print("%d checks, %d failures" % (CHECKS, FAILS))
    return 1 if FAILS else 0


def raw_equal(res):
    return res["nines"][2] == res["prometheus"][2]


if __name__ == "__main__":
    sys.exit(main())
