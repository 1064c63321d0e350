#!/usr/bin/env python3
"""Runs every rule expression and every dashboard query against a real
Prometheus that scrapes otp-service, and fails unless each one parses and
returns data.

- Recording rules and dashboard targets must return data as they are.
- An alert expression must parse; it only returns data while the alert
  fires, so each of its operands (the sides of its top-level comparisons and
  and/or/unless) must return data instead: that proves every series it
  reads exists with the labels it matches on.
- Grafana variables are substituted ($job -> .+, $__rate_interval -> 1m);
  a variable left over is an error. label_values() variable queries must
  find values too. Panels must import as they are: unique ids, each on the
  $datasource variable rather than a data source of one Grafana.
- A metric named in --pending may be missing from the service's /metrics
  page (another change adds it): an empty result that reads such a metric is
  reported as PENDING, not failed, but only while /metrics lacks it.

Checks are retried until --deadline, since recording rules need an
evaluation or two before they have data.

Usage: check_queries.py --prometheus URL --metrics URL --dashboard FILE
                        [--pending NAME,...] [--deadline SECONDS]
"""

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

GRAFANA_VARIABLES = {
    "job": ".+",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
}
METRIC_NAME = re.compile(r"\b(otp[_:][a-zA-Z0-9_:]*)")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return json.load(reply)
    except urllib.error.HTTPError as err:  # Prometheus explains a 400 in JSON
        return json.load(err)


def query(prometheus: str, expr: str):
    """Returns (error, result list) of an instant query at now."""
    reply = get_json(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if reply.get("status") != "success":
        return f"{reply.get('errorType')}: {reply.get('error')}", []
    return None, reply["data"]["result"]


# --- Splitting an alert expression into the operands that must have data ---

def top_level_tokens(expr: str):
    """Yields (start, end, operator) for binary operators outside brackets and strings."""
    depth, i, quote = 0, 0, None
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            two = expr[i : i + 2]
            if two in ("==", "!=", ">=", "<="):
                yield i, i + 2, two
                i += 1
            elif c in "<>":
                yield i, i + 1, c
            elif c.isalpha() and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_:")):
                word = re.match(r"[a-zA-Z_][a-zA-Z0-9_:]*", expr[i:]).group(0)
                if word in ("and", "or", "unless"):
                    yield i, i + len(word), word
                i += len(word) - 1
        i += 1


MODIFIERS = re.compile(
    r"^\s*(bool\b)?\s*((on|ignoring)\s*\([^)]*\))?\s*((group_left|group_right)\s*(\([^)]*\))?)?"
)
PRECEDENCE = [("or",), ("and", "unless"), ("==", "!=", ">=", "<=", ">", "<")]


def strip_parens(expr: str) -> str:
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, c in enumerate(expr):
            depth += c == "("
            depth -= c == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr  # "(a) + (b)": the outer brackets are not one pair
        expr = expr[1:-1].strip()
    return expr


def operands(expr: str):
    """The leaves of `expr` below its filtering operators (number literals dropped)."""
    expr = strip_parens(expr)
    tokens = list(top_level_tokens(expr))
    for level in PRECEDENCE:
        cuts = [(start, end) for start, end, op in tokens if op in level]
        if cuts:
            parts, last = [], 0
            for start, end in cuts:
                parts.append(expr[last:start])
                last = end + MODIFIERS.match(expr[end:]).end()
            parts.append(expr[last:])
            return [leaf for part in parts for leaf in operands(part)]
    try:
        float(expr)
        return []
    except ValueError:
        return [expr]


# --- What to check ---

def substitute(expr: str) -> str:
    def value(match):
        name = match.group(1) or match.group(2)
        if name not in GRAFANA_VARIABLES:
            raise ValueError(f"unknown Grafana variable ${name}")
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def dashboard_shape_errors(dashboard) -> list:
    """What would stop a plain import: duplicate ids, a hard-wired data source."""
    errors, ids = [], set()
    for panel in dashboard["panels"]:
        if panel["id"] in ids:
            errors.append(f"panel '{panel['title']}': duplicate id {panel['id']}")
        ids.add(panel["id"])
        if panel["type"] != "row" and panel.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"panel '{panel['title']}': data source is not the $datasource variable")
    if not dashboard.get("uid") or not dashboard.get("title"):
        errors.append("dashboard has no uid or title")
    return errors


def dashboard_checks(path: str):
    dashboard = json.load(open(path, encoding="utf-8"))
    errors = dashboard_shape_errors(dashboard)
    if errors:
        raise ValueError("; ".join(errors))
    checks = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            definition = variable.get("definition", "")
            found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", definition)
            if not found:
                raise ValueError(f"variable {variable['name']}: unsupported query {definition!r}")
            checks.append((f"variable ${variable['name']}", ("labels",) + found.groups()))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            label = f"panel '{panel['title']}' {target['refId']}"
            checks.append((label, ("data", substitute(target["expr"]))))
    return checks


def loaded_rules(prometheus: str):
    groups = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rule_checks(prometheus: str):
    rules = loaded_rules(prometheus)
    recorded = {rule["name"]: rule["query"] for rule in rules if rule["type"] == "recording"}
    checks = []
    for rule in rules:
        if rule["type"] == "recording":
            checks.append((f"record {rule['name']}", ("data", rule["query"])))
            continue
        checks.append((f"alert {rule['name']}", ("parses", rule["query"])))
        for i, leaf in enumerate(operands(rule["query"]), 1):
            checks.append((f"alert {rule['name']} operand {i}", ("data", leaf)))
    return rules, recorded, checks


def run_check(prometheus: str, check):
    """None when the check passes, else why not."""
    kind = check[0]
    if kind == "labels":
        _, metric, label = check
        url = f"{prometheus}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": metric})
        reply = get_json(url)
        return None if reply.get("data") else f"no {label} values on {metric}"
    error, result = query(prometheus, check[1])
    if error:
        return error
    if kind == "data" and not result:
        return "no data"
    return None


def metrics_read(expr: str, recorded: dict, seen=None) -> set:
    """Metric names an expression reads, through the recording rules it uses."""
    seen = seen if seen is not None else set()
    names = set()
    for name in METRIC_NAME.findall(expr):
        if name in recorded and name not in seen:
            seen.add(name)
            names |= metrics_read(recorded[name], recorded, seen)
        elif ":" not in name:
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
            names.add(name)
    return names


def exported(metrics_page: str) -> set:
    names = set()
    for line in metrics_page.splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            names.add(name)
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith(suffix):
                    names.add(name[: -len(suffix)])
    return names


def classify(args, checks, recorded, pending_allowed):
    """Runs every check once: (pending, failed) lists; the rest passed."""
    results = [(label, check, run_check(args.prometheus, check)) for label, check in checks]
    if all(why is None for _, _, why in results):
        return [], []
    page = urllib.request.urlopen(args.metrics, timeout=10).read().decode()
    present = exported(page)
    pending, failed = [], []
    for label, check, why in results:
        if why is None:
            continue
        missing = (metrics_read(check[-1], recorded) & pending_allowed) - present
        if why == "no data" and missing:
            pending.append((label, sorted(missing)))
        else:
            failed.append((label, check[-1], why))
    return pending, failed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--pending", default="")
    parser.add_argument("--deadline", type=float, default=20)
    args = parser.parse_args()
    pending_allowed = {name for name in args.pending.split(",") if name}

    rules, recorded, checks = rule_checks(args.prometheus)
    checks += dashboard_checks(args.dashboard)
    deadline = time.monotonic() + args.deadline
    while True:
        pending, failed = classify(args, checks, recorded, pending_allowed)
        # A parse error does not heal by waiting; a missing series may, once
        # Prometheus has scraped again or evaluated the recording rules.
        if not failed or time.monotonic() > deadline or any("bad_data" in why for _, _, why in failed):
            break
        time.sleep(0.5)
    passed = len(checks) - len(pending) - len(failed)
    # Prometheus's own last evaluation of each rule must have succeeded too.
    for rule in loaded_rules(args.prometheus):
        if rule.get("health") == "err":
            failed.append((f"rule {rule['name']}", rule["query"], rule.get("lastError")))
    for label, missing in pending:
        print(f"PENDING metric {', '.join(missing)} (not exported by this build yet): {label}")
    for label, expr, why in failed:
        print(f"FAILED {label}: {why}\n    {expr}", file=sys.stderr)
    print(
        f"queries: {passed} returned data or parsed, {len(pending)} pending a metric, "
        f"{len(failed)} failed ({len(rules)} rules, {len(checks)} checks)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
