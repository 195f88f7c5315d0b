"""Assessing stored DCOs: evidence from the STIX store per docs/STIX.md, scores logged, ids resolved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import stix2
from sqlmodel import Session, select

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.assessment_rows import AssessmentRun, TechniqueScore
from dcoflow.models.attack import Catalog
from dcoflow.models.operation import DcoSpec
from dcoflow.models.plan import HuntHypothesis, PlanRecord
from dcoflow.models.repository.assessment import latest_scores, score_history, trend
from dcoflow.models.repository.operation import create_operation
from dcoflow.models.repository.stix_store import put_objects
from dcoflow.tasks.assess.evidence import load_evidence
from dcoflow.tasks.assess.scoring import assess_dco, id_report_lines

from .stixdata import hunt_hit, hunt_run, outcome, verdict

NOW = datetime(2026, 6, 1, tzinfo=UTC)
T1 = "2026-05-20T10:00:00.000Z"
T2 = "2026-05-21T10:00:00.000Z"
T3 = "2026-05-22T10:00:00.000Z"


@pytest.fixture()
def session(settings: Settings) -> Iterator[Session]:
    # an explicit URL: get_engine(None) is memoised under None and would reuse an earlier test's database
    with session_scope(settings.db_url) as s:
        yield s


def make_dco(session: Session, name: str, kind: str, **profile: Any) -> str:
    spec = DcoSpec.model_validate({"name": name, "objective": "test coverage", "type": kind,
                                   "threat_profile": profile or {"techniques": ["T1003.001"]}})
    op = create_operation(session, spec, "tester")
    session.flush()
    return op.id


def hunts(dco: str) -> list[dict[str, Any]]:
    real = hunt_hit(dco, "r-lsass", ["T1003.001"], "ws01:1", T1, "run1")
    noisy = hunt_hit(dco, "r-ps", ["T1059.001"], "ws01:2", T1, "run1")
    drill = hunt_hit(dco, "r-lsass", ["T1003.001"], "ws01:3", T1, "run1", exercise=True)
    run = hunt_run(dco, "run1", T1, [{"rule_id": "r-lsass", "technique_ids": ["T1003.001"], "hits": 2},
                                     {"rule_id": "r-ps", "technique_ids": ["T1059.001"], "hits": 1},
                                     {"rule_id": "r-quiet", "technique_ids": ["T1053.005"], "hits": 0}],
                   {"Microsoft-Windows-Sysmon/Operational": 1200, "Security": 300, "Custom/Unknown": 5},
                   [real["id"], noisy["id"], drill["id"]])
    return [run, real, noisy, drill, verdict(dco, real, "true-positive", T2), verdict(dco, noisy, "false-positive", T2)]


def test_evidence_objects_are_valid_stix() -> None:
    for obj in [*hunts("d"), outcome("d", "s1", "edr", "T1003.001", "alerted", T1, T1, "high")]:
        stix2.parse(obj, allow_custom=True)


def test_hunts_only(session: Session, catalog_fixture: Catalog) -> None:
    dco = make_dco(session, "hunt only", "threat-hunt", techniques=["T1003.001", "T1059.001", "T1053.005"])
    put_objects(session, hunts(dco), dco)
    result = assess_dco(session, dco, catalog_fixture, NOW)
    lsass, ps, task = (result.assessments[t] for t in ("T1003.001", "T1059.001", "T1053.005"))
    assert lsass.detection.level == 3  # TP + exercise hit
    assert lsass.visibility.level == 4  # tested observation + Sysmon/Security telemetry
    assert (lsass.real_hits, lsass.exercise_hits) == (1, 1)
    assert result.real_hits == 1  # the exercise hit is not a real hit; the false positive is superseded
    assert ps.detection.value <= 0  # its only hit was triaged false positive: nothing fired on T1059.001
    assert any("superseded by the false-positive verdict" in line for line in ps.detection.explanation)
    assert task.detection.value <= 0 and task.visibility.value >= 1  # rule ran over Sysmon, found nothing
    assert task.coverage.clean and task.coverage.text() == "hunted with 1 rule over evtx, nothing found"
    assert any("telemetry coverage" in line for line in task.visibility.explanation)
    assert result.summary()["detected"] == 1 and result.summary()["hunted_clean"] == 1
    stored = {r.technique_id: r for r in latest_scores(session, dco)}
    assert stored["T1053.005"].explanation["hunt_coverage"]["clean"] is True
    assert result.unmapped_channels == {"Custom/Unknown": 5}
    assert not result.id_report


def test_emulation_only_with_a_corrected_outcome(session: Session, catalog_fixture: Catalog) -> None:
    dco = make_dco(session, "emulation only", "adversary-emulation")
    first = outcome(dco, "step-1", "edr", "T1003.001", "alerted", T1, T1, "high")
    corrected = outcome(dco, "step-1", "edr", "T1003.001", "none", T1, T3)  # same id, newer modified
    put_objects(session, [first, corrected], dco)
    result = assess_dco(session, dco, catalog_fixture, NOW)
    lsass = result.assessments["T1003.001"]
    assert lsass.detection.value == -1 and lsass.outcomes == {"none": 1}
    assert any("superseded by the version of " + T3 in line for line in lsass.detection.explanation)
    assert lsass.evidence_count >= 2  # history kept


def test_hunts_and_emulation_together(session: Session, catalog_fixture: Catalog) -> None:
    dco = make_dco(session, "purple", "purple-team", groups=["APT29"], techniques=["T1003.001"])
    put_objects(session, [*hunts(dco), outcome(dco, "s1", "edr", "T1003.001", "alerted", T3, T3, "critical")], dco)
    result = assess_dco(session, dco, catalog_fixture, NOW)
    assert result.assessments["T1003.001"].detection.level == 5
    apt29 = catalog_fixture.group_techniques("G0016", via=("direct", "campaigns"))
    assert set(apt29) <= set(result.assessments)
    top = result.gaps[0]
    assert top.relevance >= 1 and top.reason and top.users
    assert [g.priority for g in result.gaps] == sorted((g.priority for g in result.gaps), reverse=True)


def test_unknown_and_revoked_ids_are_resolved_and_reported(session: Session, catalog_fixture: Catalog) -> None:
    dco = make_dco(session, "old ids", "purple-team", techniques=["T1086", "T1003.001"])
    put_objects(session, [outcome(dco, "s1", "edr", "T1086", "alerted", T1, T1),
                          outcome(dco, "s2", "edr", "T9999", "logged", T1, T1),
                          hunt_hit(dco, "r-v19", ["T1685"], "ws01:9", T1, "run2")], dco)
    result = assess_dco(session, dco, catalog_fixture, NOW)
    notes = {n.requested: n for n in result.id_report}
    assert notes["T1086"].status == "revoked" and notes["T1086"].attack_id == "T1059.001"
    assert notes["T9999"].status == "unknown"
    assert (notes["T1685"].status, notes["T1685"].attack_id) == ("newer-release", "T1562.001")  # ATT&CK v19 id
    lines = id_report_lines(result.id_report)
    assert sum("T1685" in line for line in lines) == 1 and "T1685→T1562.001" in lines[0]
    assert result.assessments["T1059.001"].detection.level == 4  # moved onto the replacement
    assert "(as T1086)" in " ".join(result.assessments["T1059.001"].detection.explanation)
    # T9999 and T1685 (= T1562.001) are outside this DCO's techniques: reported, not scored
    assert "T9999" not in result.assessments and "T1562.001" not in result.assessments
    assert result.out_of_scope == {"T9999": 1, "T1562.001": 1}
    assert "2 techniques outside the DCO's plan" in result.out_of_scope_line()
    stored = session.exec(select(AssessmentRun)).one()
    assert {n["requested"] for n in stored.id_report} >= {"T1086", "T9999", "T1685"}
    assert stored.summary["out_of_scope"] == 2 and stored.summary["out_of_scope_ids"]["T9999"] == 1


def test_reassessment_adds_rows_and_trend_reads_them(session: Session, catalog_fixture: Catalog) -> None:
    dco = make_dco(session, "retest", "adversary-emulation")
    put_objects(session, [outcome(dco, "s1", "edr", "T1003.001", "none", T1, T1)], dco)
    assess_dco(session, dco, catalog_fixture, NOW)
    assess_dco(session, dco, catalog_fixture, NOW)  # same moment: idempotent
    put_objects(session, [outcome(dco, "s1-retest", "edr", "T1003.001", "alerted", T3, T3)], dco)
    later = NOW.replace(day=2)
    assess_dco(session, dco, catalog_fixture, later)
    history = score_history(session, dco, "T1003.001")
    assert [h.detection for h in history] == [-1, pytest.approx(4, abs=0.3)]
    assert len(latest_scores(session, dco)) == len(latest_scores(session, dco, back=1))
    points = trend(session, [dco])
    assert [p.detected for p in points] == [0, 1]
    assert session.exec(select(TechniqueScore)).all()[0].explanation["detection"]


def test_plan_rules_are_available_evidence(session: Session, catalog_fixture: Catalog) -> None:
    dco = make_dco(session, "planned", "threat-hunt")
    session.add(PlanRecord(dco_id=dco, attack_domain="enterprise", attack_version="18.1", attack_hash="x",
                           techniques=["T1003.001", "T1547.001"]))
    session.add(HuntHypothesis(id=f"{dco}-h1", dco_id=dco, technique_id="T1547.001", technique_name="Run Keys",
                               statement="s", sigma_rules=[{"rule_id": "r-run", "title": "Run key", "level": "high",
                                                            "path": "x.yml"}]))
    session.flush()
    evset = load_evidence(session, dco, catalog_fixture)
    assert evset.planned == ["T1003.001", "T1547.001"]
    result = assess_dco(session, dco, catalog_fixture, NOW)
    run_key = result.assessments["T1547.001"]
    assert run_key.addressable and run_key.detection.value == -1
    assert any("hunt-rule-available" in line for line in run_key.detection.explanation)


def test_stored_scores_keep_the_gap_rank_and_trend_orders_ties_by_dco(session: Session,
                                                                      catalog_fixture: Catalog) -> None:
    first = make_dco(session, "zulu drill", "purple-team", groups=["APT29"])
    second = make_dco(session, "alpha drill", "threat-hunt")
    put_objects(session, hunts(first), first)
    result = assess_dco(session, first, catalog_fixture, NOW)
    assess_dco(session, second, catalog_fixture, NOW)
    stored = {s.technique_id: s.explanation["gap_rank"] for s in latest_scores(session, first)}
    assert [stored[g.technique_id] for g in result.gaps] == list(range(1, len(result.gaps) + 1))
    assert all(stored[tid] is None for tid in set(stored) - {g.technique_id for g in result.gaps})
    assert [p.dco_id for p in trend(session)] == sorted([first, second])


def test_telemetry_evidence_comes_in_a_stable_order(catalog_fixture: Catalog) -> None:
    from dcoflow.models.assessment import EvidenceKind
    from dcoflow.tasks.assess.evidence import evidence_from_stix

    evset = evidence_from_stix(hunts("d"), catalog_fixture, "d")
    components: dict[str, list[str]] = {}
    for ev in evset.evidence:
        if ev.kind is EvidenceKind.TELEMETRY_SEEN and ev.source_ref.endswith("#Microsoft-Windows-Sysmon/Operational"):
            components.setdefault(ev.technique_id, []).append(ev.detail)
    several = [dcs for dcs in components.values() if len(dcs) > 1]
    # the order decides which of equal claims is the deciding evidence: it must not vary with the hash seed
    assert several and all(dcs == sorted(dcs) for dcs in several)
