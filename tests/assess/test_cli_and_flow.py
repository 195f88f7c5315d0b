"""`dco assess run` and the ``assess-dco`` flow run one function (tasks/assess/run.py ``assess``): the same
evidence, assessed by each in its own database, logs the same scores and writes the same files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings, get_settings
from dcoflow.models.assessment_rows import AssessmentRun, TechniqueScore

from .test_outputs_cli_flow import seed


def use_database(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Point this process's settings (the CLI's and the in-process flow's) at a fresh SQLite database."""
    monkeypatch.setenv("DCO_DATA_DIR", str(folder))
    get_settings.cache_clear()


def stored() -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    with session_scope() as s:
        [run] = s.exec(select(AssessmentRun)).all()
        scores = sorted((t.technique_id, round(t.visibility, 3), round(t.detection, 3), round(t.priority, 3),
                         t.evidence_count, t.explanation.get("gap_rank")) for t in s.exec(select(TechniqueScore)))
        summary = {k: v for k, v in run.summary.items() if k not in ("mean_visibility", "mean_detection")}
        return summary, scores


@pytest.mark.prefect
def test_cli_and_flow_store_the_same_assessment(prefect_harness: None, settings: Settings, shared_dir: Path,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dcoflow.flows.assess import assess_dco
    from dcoflow.flows.cli.assess import app

    monkeypatch.setenv("DCO_ATTACK_SOURCE", str(shared_dir / "attack/enterprise-attack-18.1.json.gz"))
    monkeypatch.setenv("DCO_TARGET_DETECTION", "4")  # read at the edge by both, passed down as a value
    use_database(monkeypatch, tmp_path / "cli")
    dco = seed("twin drill")
    out = CliRunner().invoke(app, ["run", dco, "--output-dir", str(tmp_path / "cli-out"), "--json"])
    assert out.exit_code == 0, out.output
    by_cli = json.loads(out.stdout)
    cli_stored = stored()

    use_database(monkeypatch, tmp_path / "flow")
    assert seed("twin drill") == dco
    by_flow = assess_dco(dco, output_dir=str(tmp_path / "flow-out"))[dco]
    flow_stored = stored()

    assert cli_stored == flow_stored and cli_stored[0]["target_detection"] == 4
    assert sorted(by_cli["files"]) == sorted(by_flow["files"]) and "trend" in by_cli["files"]
    assert by_cli["follow_up_gaps"] == by_flow["follow_up_gaps"] and by_cli["gaps"] == by_flow["gaps"] > 0
    cli_csv = Path(by_cli["files"]["csv"]).read_text()
    assert cli_csv.splitlines()[0] == Path(by_flow["files"]["csv"]).read_text().splitlines()[0]
