"""Publishing (table, XLSX, SVG charts, layers), the CLI and the flow, over a stored DCO."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from mitreattack.navlayers import Layer
from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.attack import Catalog
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.operation import create_operation
from dcoflow.models.repository.stix_store import put_objects

from .stixdata import hunt_hit, hunt_run, outcome, verdict

T1, T3 = "2026-05-20T10:00:00.000Z", "2026-05-22T10:00:00.000Z"


def seed(name: str = "purple drill") -> str:
    with session_scope() as session:
        spec = DcoSpec.model_validate({"name": name, "objective": "test", "type": "purple-team",
                                       "threat_profile": {"groups": ["APT29"], "techniques": ["T1003.001"]}})
        dco = create_operation(session, spec, "tester").id
        session.flush()
        hit = hunt_hit(dco, "r-lsass", ["T1003.001"], "ws01:1", T1, "run1")
        put_objects(session, [
            hunt_run(dco, "run1", T1, [{"rule_id": "r-lsass", "technique_ids": ["T1003.001"], "hits": 1}],
                     {"Microsoft-Windows-Sysmon/Operational": 100}, [hit["id"]]),
            hit, verdict(dco, hit, "true-positive", T1),
            outcome(dco, "s1", "edr", "T1059.001", "none", T1, T1),
        ], dco)
    return dco


def loads_in_mitreattack(path: Path) -> None:
    layer = Layer()
    layer.from_dict(json.loads(path.read_text()))
    assert layer.to_dict() is not None, path


def test_publish_writes_table_charts_and_layers(settings: Settings, catalog_fixture: Catalog, tmp_path: Path) -> None:
    from dcoflow.tasks.assess.outputs import publish, publish_trend
    from dcoflow.tasks.assess.scoring import assess_dco

    dco = seed()
    with session_scope() as session:
        assess_dco(session, dco, catalog_fixture, datetime(2026, 6, 1, tzinfo=UTC))
        put_objects(session, [outcome(dco, "s1-retest", "edr", "T1059.001", "alerted", T3, T3)], dco)
        assess_dco(session, dco, catalog_fixture, datetime(2026, 6, 2, tzinfo=UTC))
        files = publish(session, dco, catalog_fixture, tmp_path)
        trend_files = publish_trend(session, tmp_path)
    rows = list(csv.DictReader(Path(files["csv"]).read_text().splitlines()))
    by_id = {r["technique_id"]: r for r in rows}
    assert float(by_id["T1003.001"]["detection"]) >= 2.5 and "triage-tp" in by_id["T1003.001"]["deciding_evidence"]
    assert float(rows[0]["priority"]) >= float(rows[-1]["priority"])
    assert Path(files["xlsx"]).stat().st_size > 1000
    heat = ElementTree.parse(files["heatmap"]).getroot()
    assert "credential-access" in ElementTree.tostring(heat, encoding="unicode")
    ElementTree.parse(trend_files["trend"])
    for kind in ("coverage", "gaps", "threat", "compare"):
        loads_in_mitreattack(Path(files[f"layer-{kind}"]))
    compare = json.loads(Path(files["layer-compare"]).read_text())
    # before: 0 (Sysmon telemetry, the emulation found no alert); after: 3.8 (alerted re-test, 11 days old)
    assert {t["techniqueID"]: t["score"] for t in compare["techniques"] if "score" in t}["T1059.001"] == 4


def test_cli_commands(settings: Settings, catalog_fixture: Catalog, tmp_path: Path) -> None:
    from dcoflow.flows.cli.assess import app

    dco = seed("cli drill")
    runner = CliRunner()
    ran = runner.invoke(app, ["run", dco, "--json"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["techniques"] > 10
    gaps = json.loads(runner.invoke(app, ["gaps", dco, "--limit", "5", "--json"]).output)
    assert len(gaps) == 5 and gaps[0]["priority"] >= gaps[-1]["priority"]
    scores = json.loads(runner.invoke(app, ["scores", dco, "--json"]).output)
    assert any(s["technique_id"] == "T1003.001" for s in scores)
    history = json.loads(runner.invoke(app, ["scores", dco, "--technique", "t1003.001", "--json"]).output)
    assert len(history) == 1 and history[0]["explanation"]["detection"]
    out = tmp_path / "cov.json"
    assert runner.invoke(app, ["layer", dco, "--kind", "coverage", "--out", str(out)]).exit_code == 0
    loads_in_mitreattack(out)
    missing = runner.invoke(app, ["layer", dco, "--kind", "compare", "--out", str(out)])
    assert missing.exit_code == 2 and "nothing to compare" in missing.output
    trend = json.loads(runner.invoke(app, ["trend", "--json"]).output)
    assert [p["dco_id"] for p in trend] == [dco]
    dettect = tmp_path / "t.yaml"
    dettect.write_text("version: 1.2\nfile_type: technique-administration\ntechniques:\n"
                       "  - technique_id: T1055\n    detection:\n"
                       "      - score_logbook: [{date: 2026-01-01, score: 2}]\n")
    imported = json.loads(runner.invoke(app, ["import-dettect", str(dettect), "--dco", dco, "--json"]).output)
    assert imported["evidence"] == 1
    unknown = runner.invoke(app, ["gaps", "no-such-dco"])
    assert unknown.exit_code == 2


@pytest.mark.prefect
def test_flow_assesses_and_publishes(prefect_harness: None, settings: Settings, catalog_fixture: Catalog,
                                     shared_dir: Path, tmp_path: Path) -> None:
    from prefect.artifacts import Artifact

    from dcoflow.flows.assess import assess_dco

    dco = seed("flow drill")
    result = assess_dco(dco, output_dir=str(tmp_path),
                        attack_source=str(shared_dir / "attack/enterprise-attack-18.1.json.gz"))
    summary = result[dco]
    assert summary["techniques"] > 10 and summary["follow_up_gaps"][0]["rank"] == 1
    assert Path(summary["files"]["layer-coverage"]).exists() and Path(summary["files"]["trend"]).exists()
    artifact = Artifact.get(f"assessment-{dco}")
    assert artifact is not None and "Assessment of" in str(artifact.data)
