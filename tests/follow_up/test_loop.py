"""The follow-up loop: gap/finding → risk → actions (owned, with SLAs) → re-test → verified or reopened;
risk decisions by the right body; an expired acceptance triggers a re-test."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import stix2

from dcoflow.core.db import session_scope
from dcoflow.core.errors import StateError, ValidationError
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.followup import (
    ActionKind,
    ActionStatus,
    DecisionPolicy,
    DetectionTask,
    FindingInput,
    GapInput,
    Priority,
    RetestStatus,
    Risk,
    RiskStatus,
    ScopeImpact,
    Targets,
    Treatment,
    coverage_deficit,
    is_overdue,
    likelihood_from_gap,
    retest_verdict,
    threat_levels,
)
from dcoflow.models.operation import Scope
from dcoflow.models.repository.followup import list_actions, list_retests
from dcoflow.models.repository.stix_store import latest_objects
from dcoflow.tasks.follow_up.actions import plan_actions, update_action_status
from dcoflow.tasks.follow_up.retests import run_due_retests, schedule_retest
from dcoflow.tasks.follow_up.risks import (
    derive_risks,
    handle_expired_acceptances,
    record_decision,
    risks_needing_decision,
)

from .helpers import outcome, store

TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GAPS = [
    GapInput(technique_id="T1003.001", technique_name="LSASS Memory", visibility=0, detection=-1, relevance=1.0,
             rank=1),
    GapInput(technique_id="T1059.001", technique_name="PowerShell", visibility=3, detection=2, relevance=0.3, rank=2),
]


def test_scoring_rules() -> None:
    # Rules changed with governance as configuration (issue 9): likelihood is 1 + 4 × threat level × coverage
    # deficit, impact the criticality of the asset group a technique reaches (was: 3 + 1 per extra enclave).
    assert likelihood_from_gap(1.0, -1, 0) == 5  # the most relevant gap, and blind
    assert likelihood_from_gap(0.0, -1, 0) == 1  # blind, but no adversary of the profile uses it
    assert likelihood_from_gap(1.0, 3, 2) == 1  # relevant, and meets the detection and visibility targets
    assert likelihood_from_gap(1.0, 0, 3) == 4  # logged but nothing alerts: 0.7 of the deficit
    assert likelihood_from_gap(0.5, 0, 3) == 2
    assert likelihood_from_gap(1.0, 2, 2, Targets(detection=2, visibility=2)) == 1  # a DCO's own targets
    assert threat_levels([0.9, 0.1, 0.5, 0.5]) == [1.0, 0.25, 0.75, 0.75]  # ranks, ties share the higher
    assert coverage_deficit(-1, 0) == 1.0 and coverage_deficit(3, 2) == 0.0
    scope = ScopeImpact.of(Scope.model_validate({"platforms": ["windows", "linux"], "asset_groups": [
        {"name": "domain-controllers", "criticality": "critical", "platforms": ["windows"]},
        {"name": "web-servers", "criticality": "low", "platforms": ["linux"]}, "workstations"]}))
    assert scope.impact(["Windows"]) == (5, "domain-controllers (critical)")
    assert scope.impact(["Linux"])[0] == 3  # workstations (medium, any platform) outrank the low web servers
    assert scope.impact(["Windows"], ["discovery"])[0] == 4  # information only
    assert scope.impact(["Windows"], ["discovery", "credential-access"])[0] == 5
    assert ScopeImpact().impact() == (3, "scope without asset groups (medium)")
    assert ScopeImpact().impact(severity="critical")[0] == 5  # type: ignore[arg-type]


def test_overdue_rule() -> None:
    due = date(2026, 3, 10)
    assert is_overdue(ActionStatus.OPEN, due, date(2026, 3, 11))
    assert is_overdue(ActionStatus.REOPENED, due, date(2026, 3, 11))
    assert not is_overdue(ActionStatus.OPEN, due, due)
    assert not is_overdue(ActionStatus.DONE, due, date(2026, 4, 1))  # awaiting its re-test, not late


def test_retest_verdict_from_new_evidence_only() -> None:
    old = outcome("d", "s1", "T1003.001", "alerted", NOW - timedelta(days=1))
    assert retest_verdict("T1003.001", [old], NOW) is None
    new_fail = outcome("d", "s1", "T1003.001", "none", NOW + timedelta(hours=1))
    newer_pass = outcome("d", "s2", "T1003.001", "prevented", NOW + timedelta(hours=2))
    assert retest_verdict("T1003.001", [old, new_fail], NOW) == "fail"
    assert retest_verdict("t1003.001", [new_fail, newer_pass], NOW) == "pass"


def test_risks_from_gaps_and_findings_are_idempotent(dco: str) -> None:
    finding = FindingInput(kind="true-positive-hit", technique_id="T1059.001", sighting_id="sighting--1",
                           summary="Encoded PowerShell on ws-01", severity="high")  # type: ignore[arg-type]
    with session_scope() as s:
        first = derive_risks(s, dco, GAPS, [finding], today=TODAY)
        again = derive_risks(s, dco, GAPS, [finding], today=TODAY)
        rows = [(r.id, r.likelihood, r.impact, r.score, r.owner, r.decision_body) for r in first]
        assert [r.id for r in again] == [r.id for r in first]
        assert all(r.version == 1 for r in again)
    # impact 4: the high-criticality domain controllers; owner: the default governance's risk owner (OCIO)
    assert rows[0][1:] == (5, 4, 20, "OCIO", "BCISOA")
    assert rows[1][1:] == (1, 4, 4, "OCIO", "owner")  # weakly detected, the less relevant of two gaps
    assert rows[2][1:] == (5, 4, 20, "OCIO", "BCISOA")


def test_decisions_need_the_right_body_and_an_expiry(dco: str) -> None:
    with session_scope() as s:
        lsass = derive_risks(s, dco, GAPS[:1], [], today=TODAY)[0]
        assert [(r.id, body) for r, body in risks_needing_decision(s, NOW)] == [(lsass.id, "BCISOA")]
        with pytest.raises(ValidationError, match="BCISOA or above"):
            record_decision(s, lsass.id, Treatment.ACCEPT, "CRMG", "cost", "alice",
                            expires_at=NOW + timedelta(days=90), now=NOW)
        with pytest.raises(ValidationError, match="expiry"):
            record_decision(s, lsass.id, Treatment.ACCEPT, "BCISOA", "cost", "alice", now=NOW)
        with pytest.raises(ValidationError) as unknown:
            record_decision(s, lsass.id, Treatment.ACCEPT, "CRMX", "cost", "alice",
                            expires_at=NOW + timedelta(days=90), now=NOW)
        assert "CRMG" in unknown.value.suggestions
        record_decision(s, lsass.id, Treatment.ACCEPT, "BCISOA", "compensating control", "alice",
                        expires_at=NOW + timedelta(days=90), now=NOW)
        assert risks_needing_decision(s, NOW + timedelta(days=1)) == []
        assert lsass.status == RiskStatus.ACCEPTED


def test_expired_acceptance_schedules_a_retest_once(dco: str) -> None:
    with session_scope() as s:
        risk = derive_risks(s, dco, GAPS[:1], [], today=TODAY)[0]
        record_decision(s, risk.id, Treatment.ACCEPT, "BCISOA", "until the EDR rollout", "alice",
                        expires_at=NOW + timedelta(days=30), now=NOW)
        assert handle_expired_acceptances(s, NOW + timedelta(days=29)) == []
        later = NOW + timedelta(days=31)
        [retest] = handle_expired_acceptances(s, later)
        assert retest.technique_ids == ["T1003.001"] and retest.status == RetestStatus.SCHEDULED
        assert handle_expired_acceptances(s, later + timedelta(days=1)) == []  # handled once
        assert risk.status == RiskStatus.REVIEW
        assert [(r.id, body) for r, body in risks_needing_decision(s, later)] == [(risk.id, "BCISOA")]


def test_retest_goes_through_a_deployment_when_one_exists(dco: str) -> None:
    calls: list[tuple[str, dict[str, Any], datetime, str]] = []

    def submit(deployment: str, parameters: dict[str, Any], when: datetime, key: str) -> str | None:
        calls.append((deployment, parameters, when, key))
        return "0b4f-run" if deployment == "run-due-retests/retests" else None

    with session_scope() as s:
        r1 = schedule_retest(s, dco, ["t1003.001"], "r1", NOW, deployment="run-due-retests/retests", submit=submit)
        r1_again = schedule_retest(s, dco, ["T1003.001"], "r1", NOW, deployment="run-due-retests/retests",
                                   submit=submit)
        r2 = schedule_retest(s, dco, ["T1003.001"], "r2", NOW, deployment="missing/deployment", submit=submit)
    assert r1_again.id == r1.id and len(calls) == 2
    assert (r1.deployment, r1.flow_run_id) == ("run-due-retests/retests", "0b4f-run")
    assert calls[0][1] == {"retest_id": r1.id} and calls[0][3] == r1.id
    assert (r2.deployment, r2.flow_run_id) == (None, None)  # no deployment: the due-retests sweep runs it


def test_actions_retest_closes_or_reopens(dco: str, catalog: Catalog) -> None:
    with session_scope() as s:
        derive_risks(s, dco, GAPS, [], today=TODAY)
        actions, report = plan_actions(s, dco, GAPS, [], catalog, today=TODAY)
        again, _ = plan_actions(s, dco, GAPS, [], catalog, today=TODAY)
        assert sorted(a.id for a in again) == sorted(a.id for a in actions)
        assert report.kept == 2 and report.skipped == 0
        tech = catalog.get_technique("T1003.001")
        assert tech is not None
        remediation = [a for a in actions if a.technique_id == "T1003.001" and a.kind == ActionKind.REMEDIATION]
        assert sorted(a.mitigation_id for a in remediation) == sorted(tech.mitigation_ids)
        # The default governance: NCIA remediates, except user training (M1017), which the CIO office owns.
        assert {(a.mitigation_id, a.owner) for a in remediation} == {
            (m, "OCIO" if m == "M1017" else "NCIA") for m in tech.mitigation_ids}
        assert {(a.priority, a.sla_days, a.due_date) for a in remediation} == {
            (Priority.CRITICAL, 7, TODAY + timedelta(days=7))}
        detection = {a.technique_id: a for a in actions if a.kind == ActionKind.DETECTION_ENGINEERING}
        assert detection["T1003.001"].detection_task == DetectionTask.ONBOARD_DATA_SOURCE
        assert detection["T1059.001"].detection_task == DetectionTask.TUNE_SIGMA
        assert detection["T1059.001"].owner == "CyOC" and detection["T1059.001"].priority == Priority.LOW

        overdue = list_actions(s, dco_id=dco, overdue_only=True, today=TODAY + timedelta(days=8))
        assert {a.technique_id for a in overdue} == {"T1003.001"}

        lsass_ids = [a.id for a in actions if a.technique_id == "T1003.001"]
        with pytest.raises(StateError, match="re-test"):
            update_action_status(s, lsass_ids[0], ActionStatus.VERIFIED, "ncia")
        for aid in lsass_ids:
            update_action_status(s, aid, ActionStatus.DONE, "ncia", now=NOW)
        schedule_retest(s, dco, ["T1003.001"], "after-fix", NOW + timedelta(days=7), now=NOW)
        coas = [o for o in latest_objects(s, dco, ["course-of-action"]) if o["x_dco_technique_id"] == "T1003.001"]
        assert {o["x_dco_status"] for o in coas} == {"done"}
        rels = [o for o in latest_objects(s, dco, ["relationship"]) if o["relationship_type"] == "mitigates"]
        assert {o["target_ref"] for o in rels} >= {tech.stix_id}
        stix2.parse({"type": "bundle", "id": "bundle--0f3c3c1e-8a57-4d6a-9a2b-3c4d5e6f7a8b",
                     "objects": coas + rels}, allow_custom=True)

    # Not due yet → nothing; due but no new evidence → waits.
    with session_scope() as s:
        assert run_due_retests(s, NOW) == []
        [waiting] = run_due_retests(s, NOW + timedelta(days=8))
        assert waiting["waiting_for"] == ["T1003.001"]

    # The re-test's emulation is still not detected → actions reopen.
    store(dco, [outcome(dco, "retest-1", "T1003.001", "none", NOW + timedelta(days=7))])
    with session_scope() as s:
        [failed] = run_due_retests(s, NOW + timedelta(days=8))
        assert failed["status"] == "failed" and sorted(failed["changed"]["reopened"]) == sorted(lsass_ids)

    # Fixed again, re-tested, detected → verified, and the risk closes.
    with session_scope() as s:
        for aid in lsass_ids:
            update_action_status(s, aid, ActionStatus.DONE, "ncia", now=NOW + timedelta(days=8))
        schedule_retest(s, dco, ["T1003.001"], "after-second-fix", NOW + timedelta(days=9), now=NOW + timedelta(days=8))
    store(dco, [outcome(dco, "retest-2", "T1003.001", "alerted", NOW + timedelta(days=9))])
    with session_scope() as s:
        [passed] = run_due_retests(s, NOW + timedelta(days=10))
        assert passed["status"] == "passed" and sorted(passed["changed"]["verified"]) == sorted(lsass_ids)
        actions_now = {a.id: a for a in list_actions(s, dco_id=dco)}
        assert all(actions_now[a].status == ActionStatus.VERIFIED for a in lsass_ids)
        statuses = {r.reason: r.status for r in list_retests(s, dco_id=dco)}
        assert statuses == {"after-fix": RetestStatus.FAILED, "after-second-fix": RetestStatus.PASSED}
        [closed] = passed["changed"]["closed_risks"]
        risk = s.get(Risk, closed)
        assert risk is not None and risk.status == RiskStatus.CLOSED and risk.residual_score == 4


def test_policy_is_data() -> None:
    policy = DecisionPolicy(bodies=[(1, "service owner"), (10, "risk board")], decision_from=10)
    assert policy.body_for(9) == "service owner" and policy.body_for(12) == "risk board"


def test_threat_hunt_retest_resolves_hunt_actions(settings: Any, catalog: Catalog) -> None:
    """Issue 9: a threat-hunt DCO re-tests by hunting again — a re-hunt that ran a rule for the technique,
    clean or with a hit, verifies its done hunt actions; an older hunt does not count."""
    from dcoflow.models.operation import DcoSpec
    from dcoflow.models.repository.operation import create_operation
    from dcoflow.models.stix.ids import stix_id
    from dcoflow.models.stix.rows import stix_time

    spec = {"name": "FIN7 hunt", "objective": "Hunt FIN7 tradecraft", "type": "threat-hunt",
            "threat_profile": {"techniques": ["T1059.001"]}, "scope": {"platforms": ["windows"]}}
    gap = GapInput(technique_id="T1059.001", technique_name="PowerShell", visibility=3, detection=0, relevance=1.0,
                   rank=1)

    def hunt_run(dco: str, run: str, when: datetime, hits: int) -> dict[str, Any]:
        return {"type": "grouping", "spec_version": "2.1", "id": stix_id("grouping", dco, run),
                "created": stix_time(when), "modified": stix_time(when), "name": run, "context": "suspicious-activity",
                "object_refs": [stix_id("indicator", "rule-ps")], "x_dco_hunt_run": run, "x_dco_id": dco,
                "x_dco_rules": [{"rule_id": "rule-ps", "technique_ids": ["T1059.001"], "hits": hits}]}

    with session_scope() as s:
        dco = create_operation(s, DcoSpec.model_validate(spec), "test").id
        derive_risks(s, dco, [gap], [], catalog=catalog, today=TODAY)
        actions, _ = plan_actions(s, dco, [gap], [], catalog, today=TODAY)
        hunt_actions = [a for a in actions if a.kind == ActionKind.DETECTION_ENGINEERING]
        assert hunt_actions
        for a in hunt_actions:
            update_action_status(s, a.id, ActionStatus.DONE, "cyoc", now=NOW)
        schedule_retest(s, dco, ["T1059.001"], "re-hunt", NOW + timedelta(days=1), now=NOW)
    store(dco, [hunt_run(dco, "before", NOW - timedelta(days=1), hits=0)])  # the first hunt: not a re-test
    with session_scope() as s:
        [waiting] = run_due_retests(s, NOW + timedelta(days=2))
        assert waiting["waiting_for"] == ["T1059.001"]
    store(dco, [hunt_run(dco, "re-hunt", NOW + timedelta(days=1), hits=0)])  # clean re-hunt
    with session_scope() as s:
        [passed] = run_due_retests(s, NOW + timedelta(days=2))
        assert passed["status"] == "passed"
        assert sorted(passed["changed"]["verified"]) == sorted(a.id for a in hunt_actions)
