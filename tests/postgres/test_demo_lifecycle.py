"""The whole demo lifecycle (`dco demo`: plan → approve → hunt, triage, emulation → assess → follow up → brief
→ STIX bundle) on a fresh PostgreSQL database (issue 8, item 4). It died in follow-up with
StringDataRightTruncation: the re-test reason lists every technique with an open action, far past the
VARCHAR(200) it went into, which SQLite never enforced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.core.settings import get_settings
from dcoflow.flows.cli import app
from dcoflow.models.emulation import EmulationOutcome
from dcoflow.models.followup import Action, Incident, Retest, Risk
from dcoflow.models.hunt_run import HuntRun, HuntStatus, TriageVerdict
from dcoflow.models.operation import DcoState, Operation

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.prefect]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_demo_lifecycle_on_postgresql(db_url: str, settings: object, prefect_harness: None, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCO_DATABASE_URL", db_url)
    # `dco demo` sets these for its run; recorded here so they are put back after the test.
    for name in ("DCO_OUTPUT_DIR", "DCO_WEBHOOK_URL", "DCO_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    out = tmp_path / "demo"

    ran = CliRunner().invoke(app, ["demo", "--out", str(out)])

    assert ran.exit_code == 0, ran.output + repr(ran.exception)
    assert "demo complete" in ran.output
    with session_scope(db_url) as s:
        op = s.exec(select(Operation)).one()
        assert op.state == DcoState.FOLLOW_UP
        run = s.exec(select(HuntRun).where(HuntRun.dco_id == op.id)).one()
        assert run.status == HuntStatus.COMPLETED and run.hits > 0
        assert s.exec(select(func.count()).select_from(TriageVerdict)).one() > 0
        assert s.exec(select(func.count()).select_from(EmulationOutcome)).one() > 100
        assert s.exec(select(func.count()).select_from(Risk)).one() > 0
        actions = s.exec(select(Action).where(Action.dco_id == op.id)).all()
        assert actions and s.exec(select(func.count()).select_from(Incident)).one() > 0
        retest = s.exec(select(Retest).where(Retest.dco_id == op.id)).one()
        # The value that overflowed VARCHAR(200), stored whole: every technique with an open action.
        assert len(retest.reason) > 200
        assert retest.reason.split("|")[-1].split(",") == retest.technique_ids
    bundle = json.loads(next(out.glob("*-stix-bundle.json")).read_text())
    assert any(o["type"] == "report" for o in bundle["objects"])
