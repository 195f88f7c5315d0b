"""Benchmark: a full APT29 plan (issue target ≤ 2 s excluding Prefect start-up).

Times, in one process, what the plan-dco flow does between Prefect's start and its exports:
load the (cached) ATT&CK catalog, the Atomic Red Team and Sigma indexes, and make the plan for the
demo DCO (APT29 direct + campaigns, Windows and Linux scope). The named peer, mitreattack-python,
is timed in the same run on the part it can do: the techniques APT29 uses (direct + through
campaigns) with their mitigations — it has no emulation or hunt content.

Usage: DCO_CONTENT_DIR=../shared python bench/bench_plan.py
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("DCO_CONTENT_DIR", ROOT.parent / "shared")).resolve()
os.environ.setdefault("DCO_CONTENT_DIR", str(SHARED))
os.environ.setdefault("DCO_CACHE_DIR", tempfile.mkdtemp(prefix="bench-plan-"))
BUNDLE = SHARED / "attack" / "enterprise-attack-18.1.json.gz"


def ours() -> dict[str, float]:
    from dcoflow.connectors.attack import clear_memo, load_catalog
    from dcoflow.connectors.content.operation_file import load_operation_file
    from dcoflow.core.settings import get_settings
    from dcoflow.flows.demo import DEMO_OPERATION
    from dcoflow.tasks.plan.planning import load_content, make_plan

    load_catalog(str(BUNDLE))  # fill the cache, as any earlier process would have
    clear_memo()
    spec = load_operation_file(DEMO_OPERATION)
    t0 = time.perf_counter()
    catalog = load_catalog(str(BUNDLE))
    t1 = time.perf_counter()
    atomics, rules, warnings = load_content(get_settings())
    t2 = time.perf_counter()
    plan = make_plan(spec.slug, spec, catalog, atomics, rules)
    t3 = time.perf_counter()
    assert not warnings, warnings
    assert plan.summary["techniques"] >= 119 and plan.summary["hypotheses"] == plan.summary["techniques"]
    return {"catalog (cached)": t1 - t0, "atomics + Sigma indexes (cold)": t2 - t1, "make plan": t3 - t2,
            "total": t3 - t0, "techniques": plan.summary["techniques"], "steps": plan.summary["emulation_steps"],
            "sigma rules": plan.summary["sigma_rules"]}


def peer() -> dict[str, float]:
    from mitreattack.stix20 import MitreAttackData

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        f.write(gzip.decompress(BUNDLE.read_bytes()))
    t0 = time.perf_counter()
    data = MitreAttackData(f.name)
    t1 = time.perf_counter()
    group = data.get_object_by_attack_id("G0016", "intrusion-set")
    techniques = {t["object"]["id"] for t in data.get_techniques_used_by_group(group["id"])}
    for camp in data.get_campaigns_attributed_to_group(group["id"]):
        techniques |= {t["object"]["id"] for t in data.get_techniques_used_by_campaign(camp["object"]["id"])}
    for tid in techniques:
        data.get_mitigations_mitigating_technique(tid)
    t2 = time.perf_counter()
    os.unlink(f.name)
    return {"load": t1 - t0, "APT29 techniques + mitigations": t2 - t1, "total": t2 - t0,
            "techniques": len(techniques)}


def main() -> None:
    mine, theirs = ours(), peer()
    print(json.dumps({"dcoflow": mine, "mitreattack-python": theirs}, indent=1))
    print(f"dcoflow full APT29 plan: {mine['total']:.2f} s ({mine['techniques']:.0f} techniques, "
          f"{mine['steps']:.0f} emulation steps, {mine['sigma rules']:.0f} Sigma rules); "
          f"mitreattack-python, techniques and mitigations only: {theirs['total']:.2f} s")
    print(("PASS" if mine["total"] <= 2.0 else "FAIL") + "  full APT29 plan <= 2 s (excluding Prefect start-up)")


if __name__ == "__main__":
    main()
