#!/usr/bin/env python3
"""Checks a Grafana dashboard JSON against the metrics the programs declare.

Usage: dashboard_check.py DASHBOARD.json METRICS.ts [METRICS.ts ...]

Rules: the file is a dashboard (uid, title, panels with unique ids on a 24-column grid);
every query uses the ${datasource} variable; parentheses, brackets and braces balance in each
expression; every smmu_* metric in an expression is declared in one of the METRICS.ts files
(`name: 'smmu_...'`; a histogram's _bucket/_sum/_count series count as the histogram), or is
one of prom-client's default process metrics under a program's prefix (smmu_<program>_, given
as `processRegistry('smmu_<program>_')` or `prefix: 'smmu_<program>_'`).
Prints what it checked; exits 1 on any failure.
"""

import json
import re
import sys

# prom-client's default metrics (collectDefaultMetrics) the dashboard may use, without prefix.
DEFAULT_METRICS = {
    "process_cpu_seconds_total",
    "process_cpu_user_seconds_total",
    "process_cpu_system_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "nodejs_eventloop_lag_seconds",
    "nodejs_eventloop_lag_p50_seconds",
    "nodejs_eventloop_lag_p90_seconds",
    "nodejs_eventloop_lag_p99_seconds",
    "nodejs_heap_size_used_bytes",
    "nodejs_heap_size_total_bytes",
    "nodejs_external_memory_bytes",
    "nodejs_gc_duration_seconds",
}


def main():
    path, sources = sys.argv[1], sys.argv[2:]
    failures = []
    checks = 0

    def check(ok, what):
        nonlocal checks
        checks += 1
        if not ok:
            failures.append(what)
            print(f"  FAIL {what}")

    declared = {}
    for src in sources:
        text = open(src).read()
        for m in re.finditer(r"new (Counter|Gauge|Histogram|Summary)\(\{\s*name:\s*'(smmu_[a-z0-9_]+)'", text):
            declared[m.group(2)] = m.group(1)
        for m in re.finditer(r"(?:prefix:\s*|processRegistry\()'(smmu_[a-z0-9_]+_)'", text):
            for d in DEFAULT_METRICS:
                declared[m.group(1) + d] = "default"
    check(bool(declared), f"metrics declared in {', '.join(sources)}")

    with open(path) as f:
        dash = json.load(f)
    check(bool(dash.get("uid")) and bool(dash.get("title")), "dashboard has a uid and a title")
    var_names = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
    check("datasource" in var_names, "dashboard has a datasource variable")
    panels = []
    for p in dash.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))
    ids = [p.get("id") for p in panels]
    check(len(ids) == len(set(ids)), "panel ids are unique")
    used = set()
    exprs = 0
    for p in panels:
        g = p.get("gridPos", {})
        check(g.get("x", 0) + g.get("w", 0) <= 24, f"panel '{p.get('title')}' fits the 24-column grid")
        if p.get("type") == "row":
            continue
        check(p.get("datasource", {}).get("uid") == "${datasource}", f"panel '{p.get('title')}' uses ${{datasource}}")
        check(bool(p.get("targets")), f"panel '{p.get('title')}' has queries")
        for t in p.get("targets", []):
            e = t.get("expr", "")
            exprs += 1
            for a, b in ("()", "[]", "{}"):
                check(e.count(a) == e.count(b), f"panel '{p.get('title')}': balanced {a}{b} in {e}")
            for name in re.findall(r"\bsmmu_[a-z0-9_]+", e):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                ok = name in declared or (base in declared and declared[base] in ("Histogram", "Summary", "default"))
                check(ok, f"panel '{p.get('title')}': metric {name} is declared")
                used.add(base if base in declared else name)
    for v in dash.get("templating", {}).get("list", []):
        for name in re.findall(r"\bsmmu_[a-z0-9_]+", json.dumps(v.get("query", ""))):
            check(name in declared, f"variable {v.get('name')}: metric {name} is declared")
    print(f"  {path}: {len(panels)} panels, {exprs} queries, {len(used)} metrics, all declared in the sources"
          if not failures else f"  {path}: {len(failures)} problems")
    print(f"dashboard: {checks - len(failures)} of {checks} rules hold")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
