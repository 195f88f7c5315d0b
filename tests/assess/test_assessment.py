"""The pure scoring rules: levels per evidence kind, ageing, supersession, gap ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dcoflow.models.assessment import (
    Evidence,
    EvidenceKind,
    Relevance,
    Targets,
    age_factor,
    assess_evidence,
    detection_score,
    rank_gaps,
    score_deficit,
    threat_relevance,
    visibility_score,
)
from dcoflow.models.attack import Catalog

K = EvidenceKind
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def ev(kind: EvidenceKind, days_ago: float = 0, tid: str = "T1003.001", **kw: object) -> Evidence:
    return Evidence(tid, kind, NOW - timedelta(days=days_ago), f"ref-{kind}-{days_ago}", **kw)  # type: ignore[arg-type]


def test_no_evidence_means_no_visibility_and_unknown_detection() -> None:
    assert visibility_score([], NOW).value == 0
    det = detection_score([], NOW)
    assert det.value == -1 and det.explanation == ["no detection evidence"]


@pytest.mark.parametrize(("kind", "extra", "vis", "det"), [
    (K.EMULATION_ALERTED, {}, 3, 4),
    (K.EMULATION_ALERTED, {"severity": "high"}, 3, 5),
    (K.EMULATION_PREVENTED, {}, 3, 4),
    (K.EMULATION_LOGGED, {}, 3, 0),
    (K.EMULATION_NONE, {}, 0, -1),
    (K.HUNT_HIT, {}, 2, 0),  # fired in real data, untriaged: a lead (Sigma's T1490 VSS rules fire on SAM copies)
    (K.HUNT_HIT, {"exercise": True}, 3, 3),  # fired on the exercise's activity: tested
    (K.HUNT_HIT, {"superseded_by": "the false-positive verdict"}, 0, -1),  # fired on something else
    (K.TRIAGE_TP, {}, 3, 3),
    (K.TRIAGE_FP, {}, 0, -1),  # context only: a noisy rule detects nothing
    (K.TRIAGE_BENIGN, {}, 0, -1),
    (K.HUNT_RULE_RAN, {}, 1, -1),  # ran over its log source, found nothing: coverage, never detection
    (K.HUNT_RULE_RAN, {"value": 0.0, "data_source": "evtx"}, 1, -1),
    (K.HUNT_RULE_NO_DATA, {}, 0, -1),  # its log source held no events: not even visibility
    (K.TELEMETRY_SEEN, {"value": 1.0, "detail": "DC0001"}, 3, 0),  # logs exist: forensics, not detection
    (K.HUNT_RULE_AVAILABLE, {}, 0, -1),
    (K.DETECTION_STRATEGY, {}, 0, -1),
    (K.ASSESSED_DETECTION, {"value": 2}, 0, 2),
    (K.ASSESSED_VISIBILITY, {"value": 9}, 4, -1),  # clamped to the scale
])
def test_each_kind_claims_its_documented_level(kind: EvidenceKind, extra: dict[str, object], vis: int,
                                               det: int) -> None:
    items = [ev(kind, **extra)]
    assert visibility_score(items, NOW).value == vis
    assert detection_score(items, NOW).value == det


def test_age_halves_the_claim_per_half_life() -> None:
    assert age_factor(NOW - timedelta(days=180), NOW, 180) == pytest.approx(0.5)
    assert age_factor(NOW + timedelta(days=3), NOW, 180) == 1.0  # clock skew counts as fresh
    assert age_factor(NOW - timedelta(days=999), NOW, 0) == 1.0  # ageing switched off
    old = [ev(K.EMULATION_ALERTED, days_ago=180)]
    assert detection_score(old, NOW, 180).value == pytest.approx(1.5)  # -1 + 5 * 0.5
    assert visibility_score(old, NOW, 180).value == pytest.approx(1.5)
    assert detection_score([*old, ev(K.EMULATION_ALERTED, days_ago=1)], NOW, 180).value > 3.9  # re-test restores


def test_a_later_miss_overrules_earlier_claims_and_a_retest_restores() -> None:
    hunt = [ev(K.TRIAGE_TP, days_ago=10), ev(K.HUNT_HIT, days_ago=10, exercise=True)]
    miss = ev(K.EMULATION_NONE, days_ago=5)
    score = detection_score([*hunt, miss], NOW)
    assert score.value == -1
    assert any("overruled by emulation-none" in line for line in score.explanation)
    fixed = detection_score([*hunt, miss, ev(K.EMULATION_ALERTED, days_ago=1)], NOW)
    assert fixed.value > 3.9 and fixed.explanation[0].startswith("=> ")


def test_superseded_versions_are_listed_not_scored() -> None:
    old = ev(K.EMULATION_ALERTED, days_ago=3, superseded_by="the version of 2026-05-30")
    new = ev(K.EMULATION_LOGGED, days_ago=3)
    score = detection_score([old, new], NOW)
    assert score.value == 0
    assert any("superseded by the version of 2026-05-30" in line for line in score.explanation)


def test_visibility_from_telemetry_coverage_and_tested_observation() -> None:
    third = [ev(K.TELEMETRY_SEEN, value=0.25, detail=f"DC000{i}") for i in range(2)]
    assert visibility_score(third, NOW).value == 2  # half of the data components
    full = [ev(K.TELEMETRY_SEEN, value=0.25, detail=f"DC000{i}") for i in range(4)]
    assert visibility_score(full, NOW).value == 3
    assert visibility_score([*full, ev(K.EMULATION_LOGGED)], NOW).value == 4
    # one data component seen twice counts once
    assert visibility_score([ev(K.TELEMETRY_SEEN, value=0.25, detail="DC0001")] * 3, NOW).value == 1


def test_explanations_aggregate_records_per_kind_and_detail() -> None:
    hits = [ev(K.HUNT_HIT, days_ago=d, detail="rule r1") for d in range(50)]
    score = detection_score(hits, NOW)
    assert len(score.explanation) == 1 and "hunt-hit ×50 (rule r1)" in score.explanation[0]


def test_assess_evidence_counts_real_and_exercise_hits_separately() -> None:
    items = [ev(K.HUNT_HIT, value=3), ev(K.HUNT_HIT, exercise=True, value=2), ev(K.EMULATION_NONE)]
    result = assess_evidence(items, NOW, techniques=["T1055"])
    a = result["T1003.001"]
    assert (a.real_hits, a.exercise_hits, a.outcomes) == (3, 2, {"none": 1})
    assert result["T1055"].evidence_count == 0 and result["T1055"].detection.value == -1


def test_a_clean_hunt_is_coverage_beside_the_scores() -> None:
    items = [ev(K.HUNT_RULE_RAN, detail=f"rule r{i}", value=0.0, data_source="23 files under /data") for i in range(3)]
    items += [ev(K.HUNT_RULE_NO_DATA, detail="rule r9")]
    a = assess_evidence(items, NOW)["T1003.001"]
    assert a.detection.value == -1 and a.visibility.value == 1
    assert a.coverage.clean and (a.coverage.rules, a.coverage.rules_without_data) == (3, 1)
    assert a.coverage.text() == ("hunted with 3 rules over 23 files under /data, nothing found; "
                                 "1 rule had no telemetry for its log source")
    assert any("hunt coverage, not detection" in line for line in a.detection.explanation)
    hit = assess_evidence([*items, ev(K.HUNT_HIT, detail="rule r1", value=2)], NOW)["T1003.001"]
    assert hit.detection.value == 0 and hit.visibility.value == 2  # a lead until triaged
    tp = assess_evidence([*items, ev(K.HUNT_HIT, detail="rule r1", value=2), ev(K.TRIAGE_TP, detail="rule r1")], NOW)
    assert tp["T1003.001"].detection.value == 3


def test_gaps_are_techniques_below_target_ranked_by_relevance_times_shortfall() -> None:
    items = [ev(K.EMULATION_ALERTED, tid="T1059.001", severity="critical"), ev(K.TELEMETRY_SEEN, tid="T1059.001"),
             ev(K.HUNT_RULE_AVAILABLE, tid="T1055"), ev(K.EMULATION_LOGGED, tid="T1082"),
             ev(K.TRIAGE_TP, tid="T1021.001")]
    result = assess_evidence(items, NOW, techniques=["T1003.001", "T1082", "T1021.001"])
    relevance = {"T1003.001": Relevance(groups=("APT29 (G0016)", "FIN7 (G0046)")),
                 "T1055": Relevance(groups=("APT29 (G0016)",), on_path=True),
                 "T1059.001": Relevance(groups=("a", "b", "c")), "T1082": Relevance(software=("Cobalt Strike",)),
                 "T1021.001": Relevance(groups=("APT29 (G0016)",))}
    gaps = rank_gaps(result, relevance, Targets(detection=3, visibility=2))
    # T1059.001 (detection 5) and T1021.001 (a true positive: detection 3, visibility 3) reach the targets
    assert [g.technique_id for g in gaps] == ["T1003.001", "T1055", "T1082"]
    assert gaps[0].relevance == 6.0 and gaps[0].priority == pytest.approx(6.0 * (0.6 * 4 / 4 + 0.4 * 2 / 2))
    assert gaps[1].relevance == 5.0 and gaps[1].addressable and "on the emulation path" in gaps[1].reason
    assert "detection 0 < 3" in gaps[2].reason and "visibility" not in gaps[2].reason.split(";")[0]
    assert gaps[2].breakdown["software"] == 1
    stricter = rank_gaps(result, relevance, Targets(detection=4, visibility=3))
    assert "T1021.001" in {g.technique_id for g in stricter}
    assert score_deficit(4, 5) == 0 and score_deficit(0, -1) == 1
    assert score_deficit(2, 3, Targets(3, 2)) == 0 and score_deficit(0, -1, Targets(3, 2)) == 1


def test_threat_relevance_from_the_real_catalog(catalog_fixture: Catalog) -> None:
    rel = threat_relevance(catalog_fixture, ["APT29"], ["C0024"], planned=["T1082", "T9999"])
    uses = catalog_fixture.group_techniques("G0016", via=("direct", "campaigns"))
    assert set(uses) <= set(rel)
    assert all(any("APT29" in g for g in rel[t].groups) for t in catalog_fixture.group("G0016").technique_ids)
    assert rel["T9999"].planned and rel["T9999"].weight == 0.5  # planned, unused, undated: recency ½
    c0024 = catalog_fixture.campaign("C0024").technique_ids
    assert all(sum("C0024" in c for c in r.campaigns) == 1 for t, r in rel.items() if t in c0024)


def test_a_level_counts_when_the_aged_score_rounds_to_it() -> None:
    from dcoflow.models.assessment import reaches

    assert reaches(0.97, 1) and reaches(0.5, 1) and not reaches(0.49, 1)
    assert reaches(-1.0, -1) and not reaches(-1.0, 0)


def test_relevance_discriminates_with_one_group_in_the_profile(catalog_fixture: Catalog) -> None:
    """One group used to tie every technique at 1.00: campaigns, software, recency, the emulation path,
    platform exposure and prevalence now set them apart, and each says why."""
    planned = list(catalog_fixture.group_techniques("G0016", via=("direct", "campaigns")))
    rel = threat_relevance(catalog_fixture, ["APT29"], planned=planned, platforms=["windows", "linux"],
                           path=planned[::3], now=NOW)
    weights = [rel[t].weight for t in planned]
    assert len(set(weights)) >= 0.8 * len(weights)  # ties are the exception
    top = max(planned, key=lambda t: rel[t].weight)
    assert "software" in rel[top].reason() and "last seen" in rel[top].reason()
    linux_only = [t for t in planned if catalog_fixture.technique(t).platforms == ["Linux"]]
    for t in linux_only:
        assert rel[t].exposure == 0.5 and rel[t].platforms == ("linux",)
    mac_only = threat_relevance(catalog_fixture, planned=["T1647"], platforms=["windows"], now=NOW)["T1647"]
    assert mac_only.exposure == 0.25 and "not on the scope's platforms" in mac_only.reason()
