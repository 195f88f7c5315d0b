"""The plan phase's actions through the CLI and through the Prefect flows store the same thing: each side runs in
its own SQLite database and the stored rows (timestamps aside) and written files are compared.

create + plan (`dco ops create`, `dco plan` / the plan-dco flow), approve and send back (`dco ops approve` /
the approve-dco flow), and the plan order (`dco doc plan` / the document the plan flow writes)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from docx import Document as read_docx  # noqa: N813
from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings, get_settings
from dcoflow.flows.cli.output import cli_user
from dcoflow.flows.demo import DEMO_OPERATION
from dcoflow.models.operation import DcoState
from dcoflow.models.repository.operation import audit_trail, get_operation
from dcoflow.models.repository.plan import list_hypotheses, list_steps, plan_record

pytestmark = pytest.mark.prefect

DCO = "apt29-purple-team-demo"
WHEN = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC|\d{2} \w{3} \d{2}:\d{2}:\d{2}")


def _use_database(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setenv("DCO_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()


def _stored(dco: str = DCO) -> dict[str, Any]:
    """Everything the plan phase stores about a DCO, without the moments it happened."""
    with session_scope() as s:
        op = get_operation(s, dco)
        record = plan_record(s, op.id)
        return {
            "operation": {"id": op.id, "state": op.state.value, "version": op.version, "spec": op.spec,
                          "approved_by": op.approved_by, "approved": op.approved_at is not None},
            "steps": [st.model_dump(mode="json") for st in list_steps(s, op.id)],
            "hypotheses": sorted((h.model_dump(mode="json") for h in list_hypotheses(s, op.id)),
                                 key=lambda h: h["id"]),
            "record": None if record is None else record.model_dump(mode="json", exclude={"created_at"}),
            "audit": [(e.actor, e.action, e.from_state, e.to_state, e.reason, json.dumps(e.details, sort_keys=True))
                      for e in audit_trail(s, op.id)],
        }


def _docx_text(path: Path) -> list[str]:
    doc = read_docx(str(path))
    lines = [p.text for p in doc.paragraphs]
    lines += [" | ".join(c.text for c in row.cells) for t in doc.tables for row in t.rows]
    return [WHEN.sub("<when>", line) for line in lines]


def test_create_plan_approve_and_plan_order_store_the_same(
        prefect_harness: None, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dcoflow.flows.cli import app
    from dcoflow.flows.plan import approve_dco, plan_dco

    runner = CliRunner()
    actor = cli_user()

    # -- the CLI: create, plan, send back, plan again, approve; its plan order ------------------------------------
    _use_database(monkeypatch, tmp_path / "cli.db")
    created = runner.invoke(app, ["ops", "create", str(DEMO_OPERATION), "--by", actor, "--json"])
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["state"] == "draft"
    planned = runner.invoke(app, ["plan", str(DEMO_OPERATION), "--out", str(tmp_path / "cli"), "--json"])
    assert planned.exit_code == 0, planned.output
    cli_plan = json.loads(planned.stdout)
    doc = runner.invoke(app, ["doc", "plan", DCO, "--out", str(tmp_path / "cli-doc"), "--json"])
    assert doc.exit_code == 0, doc.output
    cli_order = _docx_text(Path(json.loads(doc.stdout)["files"]["plan-docx"]))
    cli_planned = _stored()
    back = runner.invoke(app, ["ops", "approve", DCO, "--by", "C. Lead (OCIO)", "--reject", "--json"])
    assert back.exit_code == 0, back.output
    cli_sent_back = _stored()
    approved = runner.invoke(app, ["ops", "approve", DCO, "--by", "C. Lead (OCIO)", "--json"])
    assert approved.exit_code == 0, approved.output
    cli_approved = _stored()

    # -- the flows, in a database of their own -------------------------------------------------------------------------
    _use_database(monkeypatch, tmp_path / "flow.db")
    flow_plan = plan_dco(operation_file=str(DEMO_OPERATION), output_dir=str(tmp_path / "flow"), actor=actor)
    flow_order = _docx_text(tmp_path / "flow" / f"{DCO}-plan-order.docx")
    flow_planned = _stored()
    approve_dco(dco=DCO, approver="C. Lead (OCIO)", approve=False)
    flow_sent_back = _stored()
    approve_dco(dco=DCO, approver="C. Lead (OCIO)")
    flow_approved = _stored()

    assert cli_plan["summary"] == flow_plan["summary"] and cli_plan["dco"] == flow_plan["dco"] == DCO
    assert sorted(Path(p).name for p in cli_plan["exports"]) == sorted(Path(p).name for p in flow_plan["exports"])
    assert cli_planned == flow_planned
    assert [a[1] for a in flow_planned["audit"]] == ["create", "plan", "transition"]
    assert cli_sent_back == flow_sent_back
    # the reason an approver gave none for: the flow always recorded one, the CLI recorded none before
    assert flow_sent_back["audit"][-1][4] == "sent back"
    assert cli_approved == flow_approved
    assert flow_approved["operation"]["state"] == "approved"
    assert flow_approved["operation"]["approved_by"] == "C. Lead (OCIO)"
    assert cli_order == flow_order
    assert any("NOT YET APPROVED — the DCO is planned" in line for line in flow_order)


def test_a_blank_approver_is_refused_by_both(prefect_harness: None, settings: Settings, tmp_path: Path) -> None:
    """Sending a plan back needs a name as much as approving it (the CLI's --reject recorded a blank one)."""
    from dcoflow.core.errors import ValidationError
    from dcoflow.flows.cli import app
    from dcoflow.flows.plan import approve_dco
    from dcoflow.tasks.lifecycle import change_state
    from dcoflow.tasks.plan.use_cases import create_dco

    create_dco(DEMO_OPERATION, "planner")
    change_state(DCO, DcoState.PLANNED, "planner")
    res = CliRunner().invoke(app, ["ops", "approve", DCO, "--by", " ", "--reject"])
    assert res.exit_code == 2 and "approver" in res.output
    with pytest.raises(ValidationError, match="approver"):
        approve_dco(dco=DCO, approver=" ", approve=False)
    assert [a[1] for a in _stored()["audit"]] == ["create", "transition"]

