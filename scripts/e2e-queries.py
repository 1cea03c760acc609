#!/usr/bin/env python3
"""Evaluate every PromQL query of every dashboard and rule against a live Prometheus.

Used by scripts/prometheus-e2e.sh. Each query (Grafana variables substituted) is sent to
/api/v1/query. A query fails if Prometheus returns an error, or if it returns no data
although it should: everything except the series a single demo process cannot produce
(gRPC, Alloy's own metrics, dropped-data and failure-only series, burn-rate alerts that
only fire under heavy errors) must return at least one sample.

Usage: e2e-queries.py --prom URL --service NAME --root REPO [--json-report FILE]
"""
import argparse
import glob
import json
import os
import re
import sys
import urllib.parse
import urllib.request

# Queries matching one of these may legitimately be empty in the e2e run.
MAY_BE_EMPTY = [
    (r"rpc_server_duration_seconds", "no gRPC in the demo"),
    (r"\botelcol_|\balloy_|prometheus_remote_storage_", "Alloy's own metrics: no Alloy in this test"),
    (r'error_type="queue_full"', "only when the SDK drops data"),
    (r'otel_sdk_\w+\{[^}]*error_type!=""', "only when exports fail"),
]


# Metric names the caller knows to be missing from the service (E2E_ALLOW_MISSING,
# comma-separated): queries on them are reported as KNOWN GAP instead of failing. Meant
# as a short-lived, visible waiver while a service is being fixed; empty by default.
ALLOW_MISSING = [m.strip() for m in os.environ.get("E2E_ALLOW_MISSING", "").split(",") if m.strip()]


def load_yaml(path):
    # Rule files are YAML; avoid a PyYAML dependency by asking promtool-free Python:
    # the generated files are plain block YAML, so a tiny extractor suffices.
    try:
        import yaml  # type: ignore

        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except ImportError:
        pass
    try:
        from ruamel.yaml import YAML  # type: ignore

        with open(path, encoding="utf-8") as f:
            return YAML(typ="safe").load(f)
    except ImportError:
        sys.exit("need PyYAML or ruamel.yaml (pip install pyyaml)")


def collect(root, slos):
    queries = []  # (origin, expr, must_have_data)
    for path in sorted(glob.glob(os.path.join(root, "dashboards/rules/*.yml"))):
        doc = load_yaml(path)
        for group in doc["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule.get("alert")
                is_alert = "alert" in rule
                queries.append((f"{os.path.basename(path)} {name}", rule["expr"], not is_alert))
    for path in sorted(glob.glob(os.path.join(root, "dashboards/*.json"))):
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        panels = []
        for p in d.get("panels", []):
            panels.append(p)
            panels.extend(p.get("panels", []))
        for p in panels:
            for t in p.get("targets", []):
                ds = t.get("datasource") or p.get("datasource") or {}
                if ds.get("type") == "prometheus":
                    queries.append((f"{os.path.basename(path)} panel {p['title']!r} {t['refId']}", t["expr"], True))
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query" and (v.get("datasource") or {}).get("type") == "prometheus":
                q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", q, re.S)
                queries.append((f"{os.path.basename(path)} variable {v['name']}", m.group(1) if m else q, True))
    out = []
    for origin, expr, must in queries:
        variants = [expr]
        if "$slo" in expr:
            variants = [expr.replace("$slo", s) for s in slos]
        for e in variants:
            out.append((origin, e, must))
    return out


def substitute(expr, service):
    e = expr
    for var, value in (("$__rate_interval", "1m"), ("$__interval", "15s"), ("$__range", "5m"), ("${service}", service), ("$service", service), ("$route", ".*")):
        e = e.replace(var, value)
    return e


def query(prom, expr):
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prom", required=True)
    ap.add_argument("--service", default="demo")
    ap.add_argument("--root", default=".")
    ap.add_argument("--slo", action="append", default=None, help="SLO names to substitute for $slo")
    args = ap.parse_args()
    slos = args.slo or ["availability", "users-latency"]

    queries = collect(args.root, slos)
    passed = failed = empty_ok = known_gaps = 0
    for origin, raw, must in queries:
        expr = substitute(raw, args.service)
        res = query(args.prom, expr)
        if res.get("status") != "success":
            failed += 1
            print(f"FAIL  {origin}: {res.get('errorType')}: {res.get('error')}\n      {expr}")
            continue
        data = res["data"]["result"]
        n = len(data) if isinstance(data, list) else 1
        if n == 0:
            reason = next((why for pat, why in MAY_BE_EMPTY if re.search(pat, expr)), None)
            gap = next((m for m in ALLOW_MISSING if re.search(rf"\b{re.escape(m)}\b", expr)), None)
            if must and reason is None and gap is not None:
                known_gaps += 1
                print(f"KNOWN GAP {origin}: no data ({gap} waived by E2E_ALLOW_MISSING)\n      {expr}")
                continue
            if must and reason is None:
                failed += 1
                print(f"FAIL  {origin}: no data\n      {expr}")
                continue
            empty_ok += 1
            print(f"empty {origin} ({reason or 'alert not firing'})")
            passed += 1
            continue
        passed += 1
        print(f"ok    {origin}: {n} series")
    print(f"\n{len(queries)} queries evaluated; {empty_ok} allowed to be empty")
    if known_gaps:
        print(f"WARNING: {known_gaps} queries without data waived by E2E_ALLOW_MISSING={','.join(ALLOW_MISSING)}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not queries else 0


if __name__ == "__main__":
    sys.exit(main())
