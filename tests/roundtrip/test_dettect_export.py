"""DeTT&CT round trip: a DCO's computed scores export as a technique administration file that DeTT&CT's own
health rules accept, and reading it back (as DeTT&CT users would after editing) gives the same scores."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import yaml
from typer.testing import CliRunner

from dcoflow.connectors.content.dettect import (
    ScoreRow,
    read_dettect,
    technique_administration,
    technique_file_problems,
)
from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.assessment import EvidenceKind
from dcoflow.models.attack import Catalog
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.assessment import latest_scores
from dcoflow.models.repository.operation import create_operation
from dcoflow.tasks.assess.dettect_export import export_dettect
from dcoflow.tasks.assess.evidence import store_imported
from dcoflow.tasks.assess.scoring import assess_dco

SEED = """\
version: 1.2
file_type: technique-administration
name: endpoints
platform: [windows]
techniques:
  - technique_id: T1059.001
    detection:
      - {applicable_to: [all], location: [EDR], comment: '', score_logbook: [{date: 2026-05-01, score: 4, comment: x}]}
    visibility:
      - {applicable_to: [all], comment: '', score_logbook: [{date: 2026-05-01, score: 3, comment: ''}]}
  - technique_id: T1003.001
    detection:
      - {applicable_to: [all], location: [EDR], comment: '', score_logbook: [{date: 2026-05-01, score: 2, comment: x}]}
    visibility:
      - {applicable_to: [all], comment: '', score_logbook: [{date: 2026-05-01, score: 4, comment: ''}]}
"""


def test_scores_export_and_read_back(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED)
    with session_scope() as s:
        spec = DcoSpec.model_validate({"name": "dettect round trip", "objective": "baseline", "type": "threat-hunt",
                                       "threat_profile": {"techniques": ["T1059.001", "T1003.001", "T1021.001"]}})
        dco = create_operation(s, spec, "tester").id
        s.flush()
        store_imported(s, dco, read_dettect(seed, dco_id=dco).evidence)
        assess_dco(s, dco, catalog, datetime(2026, 5, 2, tzinfo=UTC))
    out = tmp_path / "export.yaml"
    with session_scope() as s:
        export_dettect(s, dco, catalog, out)
        computed = {r.technique_id: r for r in latest_scores(s, dco)}
    doc = yaml.safe_load(out.read_text())
    assert technique_file_problems(doc) == []
    assert doc["platform"] == ["Windows"] and {t["technique_id"] for t in doc["techniques"]} == set(computed)
    back = read_dettect(out)
    assert back.report.bad == []
    got = {(e.technique_id, e.kind): e.value for e in back.evidence}
    for tid, row in computed.items():
        assert got[(tid, EvidenceKind.ASSESSED_DETECTION)] == max(-1, min(5, round(row.detection)))
        assert got[(tid, EvidenceKind.ASSESSED_VISIBILITY)] == max(0, min(4, round(row.visibility)))
    assert got[("T1059.001", EvidenceKind.ASSESSED_DETECTION)] == 4  # the seed's score survives the trip


def test_health_rules_catch_what_dettect_refuses() -> None:
    good = yaml.safe_load(technique_administration(
        [ScoreRow("T1003.001", "LSASS Memory", 3.6, -1.0, date(2026, 5, 2))], name="x", platforms=["windows"]))
    assert technique_file_problems(good) == []
    entry = good["techniques"][0]
    assert entry["visibility"][0]["score_logbook"][0]["score"] == 4
    entry["detection"][0]["score_logbook"][0]["score"] = 2.5
    entry["visibility"][0]["score_logbook"][0]["date"] = "someday"
    del entry["detection"][0]["location"]
    good["techniques"].append({"technique_id": "T1003.001", "visibility": []})
    problems = technique_file_problems(good)
    assert any("2.5" in p for p in problems) and any("someday" in p for p in problems)
    assert any("missing location" in p for p in problems) and any("duplicate" in p for p in problems)
    assert any("missing detection" in p for p in problems)


def test_cli_export_without_assessment_is_a_clear_error(settings: Settings, catalog: Catalog, tmp_path: Path,
                                                        monkeypatch: object) -> None:
    import dcoflow.connectors.attack as attack_connector
    from dcoflow.flows.cli import app

    monkeypatch.setattr(attack_connector, "load_catalog", lambda source=None, **_: catalog)  # type: ignore[attr-defined]
    with session_scope() as s:
        spec = DcoSpec.model_validate({"name": "not assessed", "objective": "baseline", "type": "threat-hunt",
                                       "threat_profile": {"techniques": ["T1059.001"]}})
        dco = create_operation(s, spec, "tester").id
    out = CliRunner().invoke(app, ["assess", "export-dettect", dco, "--out", str(tmp_path / "x.yaml")])
    assert out.exit_code == 2 and "no assessment" in out.output
