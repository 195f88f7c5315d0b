"""The demo's emulation outcomes tell a plausible purple-team story: deterministic rules by technique,
parent technique and tactic (flows/demo/outcomes.yaml), varied across the plan, true to the defences."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.flows.conduct_emulation import _answer_for
from dcoflow.flows.demo import DEMO_OPERATION, demo_answers
from dcoflow.models.attack import Catalog
from dcoflow.models.plan import EmulationStep, ProcedureSource
from dcoflow.models.planning import ordered, select_techniques

RANK = {"prevented": 3, "alerted": 2, "logged": 1, "none": 0}


@pytest.fixture(scope="module")
def answers(catalog: Catalog) -> dict[str, list[dict[str, Any]]]:
    """The demo plan's steps and the outcomes each would be recorded with, by technique."""
    spec = load_operation_file(DEMO_OPERATION)
    rules, _ = demo_answers()
    out = {}
    for n, (tactic, tech) in enumerate(ordered(select_techniques(spec, catalog), catalog), start=1):
        step = EmulationStep(id=f"s{n}", dco_id="demo", order=n, tactic=tactic, technique_id=tech.attack_id,
                             technique_name=tech.name, source=ProcedureSource.MANUAL, procedure_name=tech.name)
        out[tech.attack_id] = _answer_for(step, rules)
    return out


def test_every_step_gets_one_verdict_per_tool(answers: dict[str, list[dict[str, Any]]]) -> None:
    assert len(answers) >= 100
    for tid, outcomes in answers.items():
        assert sorted(o["tool"] for o in outcomes) == ["EDR", "SIEM"], tid
        assert all(o["outcome"] in RANK for o in outcomes), tid


def test_outcomes_are_varied_not_one_canned_answer(answers: dict[str, list[dict[str, Any]]]) -> None:
    best = Counter(max(o, key=lambda x: RANK[x["outcome"]])["outcome"] for o in answers.values())
    pairs = Counter(tuple(x["outcome"] for x in o) for o in answers.values())
    assert set(best) == set(RANK)  # some prevented, some alerted, some logged only, some missed
    assert all(n >= 5 for n in best.values()) and max(best.values()) <= 0.4 * len(answers)
    assert max(pairs.values()) <= 0.4 * len(answers)  # was 115 of 123 one answer


def test_the_story_is_true_to_the_defences(answers: dict[str, list[dict[str, Any]]], catalog: Catalog) -> None:
    def verdict(tid: str, tool: str) -> str:
        return next(o["outcome"] for o in answers[tid] if o["tool"] == tool)

    assert verdict("T1003.001", "EDR") == "prevented"  # credential dumping stopped at the endpoint
    assert verdict("T1059.001", "SIEM") == "alerted"  # encoded PowerShell alerts
    discovery = [t for t in answers if catalog.technique(t).tactics[0] == "discovery"]
    logged_only = [t for t in discovery if {o["outcome"] for o in answers[t]} == {"none", "logged"}]
    assert len(logged_only) >= 0.6 * len(discovery)  # Sysmon logs discovery, nothing alerts
    assert {o["outcome"] for o in answers["T1048.002"]} == {"none"}  # exfiltration over the web is missed
    recon = [t for t in answers if catalog.technique(t).tactics[0] == "reconnaissance"]
    assert recon and all({o["outcome"] for o in answers[t]} == {"none"} for t in recon)
