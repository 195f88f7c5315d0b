"""Issue 9: risks on the demo DCO are differentiated — likelihood from threat relevance and the coverage
deficit, impact from the criticality of the asset groups a technique reaches — not 50 of 52 at one score.

The demo data: the demo operation planned against the real content, every emulation step answered from
the demo's own outcomes (flows/demo/outcomes.yaml, by the conduct flow's own rules), assessed, followed up."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.flows.conduct_emulation import _answer_for, _outcome_dicts
from dcoflow.flows.demo import DEMO_OPERATION, demo_answers
from dcoflow.models.attack import Catalog
from dcoflow.models.operation import DcoState
from dcoflow.models.repository.emulation import load_steps
from dcoflow.models.repository.operation import create_operation, get_operation, transition
from dcoflow.tasks.assess.scoring import assess_dco
from dcoflow.tasks.conduct.emulation.outcomes import record_outcome
from dcoflow.tasks.follow_up.run import run_follow_up
from dcoflow.tasks.plan.planning import load_content, make_plan, store_plan

ASSESSED = datetime(2026, 12, 12, 12, 0, tzinfo=UTC)


def test_demo_risk_scores_spread(settings: Settings, catalog: Catalog) -> None:
    spec = load_operation_file(DEMO_OPERATION)
    atomics, rules, _ = load_content(settings)
    outcomes, _verdicts = demo_answers()
    with session_scope() as s:
        dco = create_operation(s, spec, "coordinator").id
        store_plan(s, make_plan(dco, spec, catalog, atomics, rules), "coordinator")
        for state in (DcoState.APPROVED, DcoState.CONDUCTING):
            transition(s, get_operation(s, dco), state, "coordinator", "test")
    with session_scope() as s:
        for step in load_steps(s, dco):
            for answer in _outcome_dicts(_answer_for(step, outcomes), "demo purple team"):
                record_outcome(s, dco, step.id, answer, catalog=catalog)
    with session_scope() as s:
        assess_dco(s, dco, catalog, now=ASSESSED)
        result = run_follow_up(s, dco, catalog)
    scores = Counter(r["score"] for r in result.risks)
    print("risk scores on the demo:", sorted(scores.items()))
    assert len(result.risks) >= 20
    assert len(scores) >= 5, scores
    assert max(scores.values()) <= 0.4 * len(result.risks), scores
