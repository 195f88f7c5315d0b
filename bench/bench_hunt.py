"""Benchmark: dcoflow's local Sigma engine vs the Zircolite-style SQLite reference.

Same rules (SigmaHQ rules/windows), same events (Security-Datasets corpus). Prints events/s
for both, the ratio, and agreement per rule and per (rule, event) with every difference
put in a named category. ``--scale N`` streams the corpus N times through the engine
(1 M events with N≈36) and prints throughput and peak RSS (memory stays bounded: events are
never held, only counts).

    .venv/bin/python -m bench.bench_hunt [--shared ../shared] [--scale 36]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reference_sqlite import build_table, convert_rules, run_rule  # noqa: E402
from connectors.content.sigma_rules import load_rule_index  # noqa: E402
from connectors.telemetry import iter_events  # noqa: E402
from models.sigma.compiler import RuleCompileError, RuleSet, compile_rule  # noqa: E402

MAX_MEMBER = 2 * 1024**3


def _fields_of(yaml_text: str) -> set[str]:
    import yaml
    doc = yaml.load(yaml_text, Loader=yaml.CSafeLoader)
    out: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str) and k != "condition":
                    out.add(k.split("|")[0].lower())
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc.get("detection", {}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--scale", type=int, default=0, help="stream the corpus N times through the engine")
    args = ap.parse_args()
    rules_dir = args.shared / "sigma" / "rules" / "windows"
    data_dir = args.shared / "security-datasets" / "data"

    t0 = time.perf_counter()
    index = load_rule_index(rules_dir)
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled, skipped = [], {}
    for info in index.rules:
        try:
            compiled.append(compile_rule(info))
        except RuleCompileError as exc:
            skipped[info.rule_id] = str(exc)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    events = list(iter_events(data_dir, max_member_bytes=MAX_MEMBER))
    t_read = time.perf_counter() - t0
    n = len(events)
    print(f"rules: {len(index.rules)} indexed in {t_index:.2f}s, {len(compiled)} compiled in {t_compile:.2f}s, "
          f"{len(skipped)} skipped; events: {n} read in {t_read:.2f}s ({n / t_read:,.0f}/s)")

    # -- engine ---------------------------------------------------------------------------------
    ruleset = RuleSet(compiled)
    mine: dict[str, set[int]] = defaultdict(set)
    t0 = time.perf_counter()
    for i, ev in enumerate(events):
        for r in ruleset.match(ev):
            mine[compiled[r].info.rule_id].add(i)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for ev in events:
        ruleset.match(ev)
    t_engine = time.perf_counter() - t0
    print(f"dcoflow engine: {n / t_engine:,.0f} events/s (warm); first pass incl. building dispatch groups "
          f"{n / t_first:,.0f} events/s")

    # -- reference ------------------------------------------------------------------------------
    t0 = time.perf_counter()
    refs = convert_rules(index.rules)
    t_convert = time.perf_counter() - t0
    t0 = time.perf_counter()
    conn = build_table(events)
    theirs: dict[str, set[int]] = {}
    ref_errors: dict[str, str] = {}
    for ref in refs:
        if ref.error is not None:
            ref_errors[ref.info.rule_id] = ref.error
            continue
        theirs[ref.info.rule_id] = run_rule(conn, ref)
    t_ref = time.perf_counter() - t0
    print(f"SQLite reference (pySigma sqlite backend): {n / t_ref:,.0f} events/s "
          f"(load + {len(theirs)} queries; conversion {t_convert:.1f}s not counted), "
          f"{len(ref_errors)} rules not convertible")
    print(f"ratio: {t_ref / t_engine:,.1f}x")

    # -- agreement ------------------------------------------------------------------------------
    by_id = {r.rule_id: r for r in index.rules}
    no_variant = {cr.info.rule_id for cr in compiled if not cr.codes}
    has_not = {rid for rid in by_id if "not " in str(by_id[rid].yaml.split("condition:")[-1])}
    categories: Counter[str] = Counter()
    examples: dict[str, str] = {}
    agree_rules = 0
    total_pairs = agree_pairs = 0
    for rid, info in by_id.items():
        a = mine.get(rid, set())
        if rid in ref_errors:
            if a:
                categories["reference cannot convert rule (keywords / unknown modifier): engine hits"] += len(a)
                examples.setdefault("reference cannot convert rule (keywords / unknown modifier): engine hits",
                                    f"{info.title}: {ref_errors[rid]}")
            else:
                agree_rules += 1
            continue
        b = theirs.get(rid, set())
        total_pairs += len(a | b)
        agree_pairs += len(a & b)
        if a == b:
            agree_rules += 1
            continue
        fields = _fields_of(info.yaml)
        for i in b - a:
            if rid in no_variant:
                cat = "logsource without event mapping: reference runs it on every channel, engine on none"
            elif rid in skipped:
                cat = "rule skipped by the engine"
            else:
                cat = "reference only: unexplained"
            categories[cat] += 1
            examples.setdefault(cat, f"{info.title} on event {i}")
        for i in a - b:
            ev_keys = {k.lower() for k in events[i]}
            if rid in has_not and fields - ev_keys:
                cat = "NOT over a field the event lacks: SQL three-valued logic drops it, Sigma back ends match"
            else:
                cat = "engine only: unexplained"
            categories[cat] += 1
            examples.setdefault(cat, f"{info.title} on event {i}")
    print(f"agreement: {agree_rules}/{len(by_id)} rules identical; "
          f"(rule, event) pairs {agree_pairs}/{total_pairs} in both")
    for cat, count in categories.most_common():
        print(f"  {count:6d}  {cat}   e.g. {examples[cat]}")

    if args.scale:
        _scale(args.scale, ruleset, data_dir)


def _scale(times: int, ruleset: RuleSet, data_dir: Path) -> None:
    t0 = time.perf_counter()
    n = hits = 0
    for _ in range(times):
        for ev in iter_events(data_dir, max_member_bytes=MAX_MEMBER):
            n += 1
            hits += len(ruleset.match(ev))
    dt = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"scale x{times}: {n:,} events streamed (read + match) in {dt:.1f}s = {n / dt:,.0f} events/s, "
          f"{hits:,} hits, peak RSS {rss_mb:,.0f} MB")


if __name__ == "__main__":
    main()
