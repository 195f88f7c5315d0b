"""DeTT&CT administration files (technique 1.2 with score logbooks, data sources) as evidence."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from dcoflow.connectors.content.dettect import read_dettect
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ContentError
from dcoflow.core.settings import Settings
from dcoflow.models.assessment import EvidenceKind
from dcoflow.models.attack import Catalog
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.operation import create_operation
from dcoflow.tasks.assess.evidence import store_imported
from dcoflow.tasks.assess.scoring import assess_dco

TECHNIQUES = """\
version: 1.2
file_type: technique-administration
name: endpoints
platform: [windows]
techniques:
  - technique_id: T1059.001
    technique_name: PowerShell
    detection:
      - applicable_to: [all]
        location: [EDR]
        comment: ''
        score_logbook:
          - {date: 2026-01-10, score: 2, comment: initial}
          - {date: 2026-05-01, score: 4, comment: tuned}
    visibility:
      - applicable_to: [all]
        comment: ''
        score_logbook:
          - {date: 2026-05-01, score: 3, comment: '', auto_generated: false}
  - technique_id: T1003.001
    detection:
      applicable_to: [all]
      date_implemented: 2026-04-01
      score: 3
  - technique_id: T1055
    detection:
      - applicable_to: [all]
        score_logbook:
          - {date: 2026-01-10, score: 9}
          - {date: someday, score: 1}
  - technique_name: no id here
"""

DATA_SOURCES = """\
version: 1.1
file_type: data-source-administration
name: endpoints
data_sources:
  - data_source_name: Process Creation
    data_source:
      - applicable_to: [all]
        date_connected: 2026-02-01
        available_for_data_analytics: true
        data_quality: {device_completeness: 5, data_field_completeness: 5, timeliness: 5, consistency: 5,
                       retention: 5}
  - data_source_name: File Deletion
    data_source:
      - applicable_to: [all]
        available_for_data_analytics: false
        data_quality: {device_completeness: 0, data_field_completeness: 0, timeliness: 0, consistency: 0,
                       retention: 0}
  - data_source_name: Process monitoring
    date_connected: 2017-01-01
    available_for_data_analytics: true
    data_quality: {device_completeness: 5, data_field_completeness: 5, timeliness: 5, consistency: 5, retention: 5}
"""


def test_technique_file_keeps_every_logbook_entry_and_reports_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "techniques.yaml"
    path.write_text(TECHNIQUES)
    result = read_dettect(path, dco_id="d", today=date(2026, 6, 1))
    det = [(e.technique_id, e.value, e.observed_at.date().isoformat()) for e in result.evidence
           if e.kind is EvidenceKind.ASSESSED_DETECTION]
    assert det == [("T1059.001", 2.0, "2026-01-10"), ("T1059.001", 4.0, "2026-05-01"),
                   ("T1003.001", 3.0, "2026-04-01")]
    assert result.report.read == 4 and result.report.kept == 2
    reasons = " | ".join(f"{b.location}: {b.reason}" for b in result.report.bad)
    assert "techniques[2] (T1055) detection[0].score_logbook[0]: score 9 outside -1..5" in reasons
    assert "bad date 'someday'" in reasons and "techniques[3]: entry without a technique_id" in reasons


def test_data_source_file_seeds_visibility(tmp_path: Path, catalog_fixture: Catalog) -> None:
    path = tmp_path / "ds.yaml"
    path.write_text(DATA_SOURCES)
    result = read_dettect(path, catalog=catalog_fixture)
    process_creation = next(dc for dc in catalog_fixture.data_components if dc.name == "Process Creation")
    assert {e.technique_id for e in result.evidence} == set(process_creation.technique_ids)
    assert all(e.kind is EvidenceKind.TELEMETRY_SEEN and e.weight == 1.0 for e in result.evidence)
    assert [b.location.split(": ")[-1] for b in result.report.bad] == ["data_sources[2] (Process monitoring)"]


@pytest.mark.parametrize(("text", "message"), [
    ("techniques: [unclosed", "not valid YAML"),
    ("- a list", "top level is not a mapping"),
    ("file_type: group-administration\n", "unsupported file_type"),
    ("file_type: technique-administration\ntechniques: 3\n", "without a 'techniques' list"),
])
def test_bad_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ContentError, match=message) as info:
        read_dettect(path)
    assert info.value.object == str(path)


def test_imported_scores_feed_the_assessment(tmp_path: Path, settings: Settings, catalog_fixture: Catalog) -> None:
    path = tmp_path / "techniques.yaml"
    path.write_text(TECHNIQUES)
    with session_scope(settings.db_url) as session:
        assert isinstance(session, Session)
        spec = DcoSpec.model_validate({"name": "seeded", "objective": "baseline", "type": "threat-hunt",
                                       "threat_profile": {"techniques": ["T1059.001"]}})
        dco = create_operation(session, spec, "tester").id
        session.flush()
        evidence = read_dettect(path, dco_id=dco).evidence
        assert store_imported(session, dco, evidence) == len(evidence)
        store_imported(session, dco, evidence)  # idempotent
        result = assess_dco(session, dco, catalog_fixture, datetime(2026, 5, 2, tzinfo=UTC))
    ps = result.assessments["T1059.001"]
    assert ps.detection.level == 4 and ps.visibility.level == 3
    deciding = [line for line in ps.detection.explanation if line.startswith("=> ")]
    assert len(deciding) == 1 and "assessed-detection" in deciding[0] and "DeTT&CT endpoints" in deciding[0]
    assert ps.evidence_count >= 3
