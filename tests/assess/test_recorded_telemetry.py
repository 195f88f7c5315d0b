"""A threat-hunt DCO over recorded attack telemetry the project never tuned for (Security-Datasets):
its ~20 recorded techniques plus techniques absent from the data. Planned, hunted with the plan's rules
(as `dco hunt --dco` does) and assessed with the phases' own functions. Detection must come only from
rules that fired on the technique's activity; nothing absent may be called detected; only the DCO's own
techniques are scored."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sqlmodel import select

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.assessment import reaches
from dcoflow.models.attack import Catalog
from dcoflow.models.hunt_run import HuntRun
from dcoflow.models.hunting import HuntSelection
from dcoflow.models.operation import DcoSpec, DcoState
from dcoflow.models.plan import HuntHypothesis
from dcoflow.models.repository.operation import create_operation, get_operation, transition
from dcoflow.models.repository.stix_store import latest_objects
from dcoflow.tasks.assess.scoring import assess_dco
from dcoflow.tasks.conduct.hunt_record import record_hunt
from dcoflow.tasks.conduct.local_hunt import run_local_hunt
from dcoflow.tasks.conduct.triage import triage_hit
from dcoflow.tasks.plan.planning import load_content, make_plan, store_plan

# Impact techniques nothing in the recordings does: ransomware, wiping, shutdown, defacement, mining.
ABSENT = ["T1486", "T1490", "T1485", "T1529", "T1489", "T1491.001", "T1561.001", "T1496.001"]


def _recorded(shared: Path) -> list[str]:
    with (shared / "security-datasets" / "manifest.csv").open(encoding="utf-8") as fh:
        return sorted({t.strip() for row in csv.DictReader(fh) for t in row["techniques"].split(";") if t.strip()})


def test_a_hunt_over_recorded_telemetry_calls_detected_only_what_fired(
    settings: Settings, shared_dir: Path, catalog: Catalog,
) -> None:
    recorded = _recorded(shared_dir)
    assert len(recorded) >= 15 and not set(ABSENT) & set(recorded)
    spec = DcoSpec.model_validate({
        "name": "Recorded telemetry hunt", "objective": "hunt the recorded attacks", "type": "threat-hunt",
        "scope": {"platforms": ["windows"]}, "threat_profile": {"techniques": [*recorded, *ABSENT]},
    })
    atomics, rules, _ = load_content(settings)
    with session_scope() as s:
        dco_id = create_operation(s, spec, "hunter").id
        planned = set(store_plan(s, make_plan(dco_id, spec, catalog, atomics, rules), "hunter").techniques)
        for state in (DcoState.APPROVED, DcoState.CONDUCTING):  # hunts need an approved DCO
            transition(s, get_operation(s, dco_id), state, "coordinator", "approved for the test hunt")
        hypotheses = s.exec(select(HuntHypothesis).where(HuntHypothesis.dco_id == dco_id))
        rule_ids = sorted({str(r["rule_id"]) for h in hypotheses for r in h.sigma_rules})
    assert planned >= set(ABSENT) and rule_ids

    outcome = run_local_hunt([shared_dir / "sigma" / "rules", shared_dir / "sigma" / "rules-threat-hunting"],
                             shared_dir / "security-datasets" / "data", HuntSelection(rule_ids=rule_ids), workers=1)
    with session_scope() as s:
        run = record_hunt(s, dco_id, outcome, hunt_key="recorded", catalog=catalog)
        fired: set[str] = set()
        for stat in run.rule_stats.values():
            if int(stat["hits"]) > 0:
                fired |= {catalog.resolve(t, warn=False).attack_id or t for t in stat["technique_ids"]}
        assert s.get(HuntRun, run.id) is not None
        result = assess_dco(s, dco_id, catalog)

    assert set(result.assessments) == planned  # only the DCO's own techniques are scored
    assert result.out_of_scope and not set(result.out_of_scope) & planned  # reported, not scored

    def detected(res: Any) -> set[str]:
        return {t for t, a in res.assessments.items() if reaches(a.detection.value, 1)}

    # Untriaged hits are leads: Sigma's T1490 (Inhibit System Recovery) rules fire on the recordings'
    # VSS use for SAM copies. Nothing is called detected before an analyst confirms it.
    assert not detected(result)
    assert any(reaches(result.assessments[t].visibility.value, 2) for t in fired & planned)
    clean = {t for t, a in result.assessments.items() if a.coverage.clean}
    assert clean  # hunted, nothing found: coverage beside the scores
    assert all(result.assessments[t].visibility.value <= 1 for t in clean)

    # The analyst triages every hit against what the recordings hold (their metadata): hits of a rule
    # for a recorded technique are true positives, the rest false positives.
    with session_scope() as s:
        for hit in latest_objects(s, dco_id, ["sighting"]):
            ids = {catalog.resolve(t, warn=False).attack_id or t for t in hit.get("x_dco_technique_ids", [])}
            verdict = "true-positive" if ids & set(recorded) else "false-positive"
            triage_hit(s, hit["id"], verdict, "analyst", "checked against the recording's metadata")
        after = assess_dco(s, dco_id, catalog)
    found = detected(after)
    assert found and not found & set(ABSENT)  # ransomware encryption is not "detected" without ransomware
    assert len(found & fired) >= 0.95 * len(found), sorted(found - fired)
    assert found <= set(recorded)
    assert not {t for t, a in after.assessments.items() if a.coverage.clean} & found
