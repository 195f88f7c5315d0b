"""The meeting pack of an IR-support DCO carries the IR status line and the IR brief's key facts (hosts swept and
when, indicators found where, first/last seen, dwell time, containment with owner and status), taken from the
same IrActivity the IR brief is written from, so the two never disagree; the executive brief leads with the
IR status line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.attack import Catalog
from dcoflow.models.ir.activity import ir_brief_markdown
from dcoflow.tasks.conduct.ir_sweep import run_sweep
from dcoflow.tasks.plan.ir_incident import create_ir_dco, load_incident
from dcoflow.tasks.reporting.briefing import executive_brief
from dcoflow.tasks.reporting.ir_brief import add_containment, load_ir_activity
from dcoflow.tasks.reporting.meetings import build_pack, create_meeting, meeting_pack_text

from .incident_bundle import approve, incident_bundle, ir_telemetry

AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def test_meeting_pack_carries_the_ir_brief(settings: Settings, catalog: Catalog, tmp_path: Path) -> None:
    bundle = tmp_path / "incident.json"
    bundle.write_text(json.dumps(incident_bundle()), encoding="utf-8")
    with session_scope() as s:
        dco = create_ir_dco(s, load_incident(str(bundle))).dco_id
        approve(s, dco)
    with session_scope() as s:
        run_sweep(s, str(bundle), ir_telemetry(tmp_path), dco=dco)
        add_containment(s, dco, "isolate WKST-01", owner="NOC", status="done")
        add_containment(s, dco, "block update-check.example.net", owner="SOC", status="in-progress")
    with session_scope() as s:
        meeting = create_meeting(s, dco, "DCO coordination board", AT, now=AT)
        pack = build_pack(s, meeting.id, catalog, now=AT)
        md, html = meeting_pack_text(pack, "md"), meeting_pack_text(pack, "html")
        activity = load_ir_activity(s, dco)
    brief = ir_brief_markdown(activity)

    (facts,) = pack.facts
    assert facts.ir is not None and facts.ir.as_dict() == activity.as_dict()  # one source, one set of numbers
    line = activity.status_line()
    assert f"**Status:** {line}" in brief and f"**IR status:** {line}" in md
    assert "indicators on 1 of 2 hosts swept (1 sweeps); dwell ≈ 1.4 days; containment 1 done, 1 open" in line
    assert "incident-response support" in pack.agenda[0]
    assert f"Incident response: {line}." in executive_brief(facts)  # the executive line, as the board reads it
    for text in (md, html):
        assert "Incident-response support — Credential theft on WKST-01" in text
        assert "Hosts swept: 2 (srv-02, wkst-01)" in text
        assert f"last sweep {activity.last_swept}" in text and activity.last_swept
        assert "1.4 days" in text and "2026-11-18T21:14:03" in text and "2026-11-19T09:00:00" in text
    # each finding and containment row as the brief lists it: indicator, where, how often, first/last seen
    (finding,) = activity.findings
    assert (f"| C2 domain | wkst-01 | 2 | {finding['first_seen']} | {finding['last_seen']} |") in md
    assert f"| C2 domain | wkst-01 | 2 | {finding['first_seen']} | {finding['last_seen']} |" in brief
    for row in ("| isolate WKST-01 | NOC | done | by hand |", "| block update-check.example.net | SOC | in-progress "
                "| by hand |"):
        assert row in md and row in brief
    assert "<td>isolate WKST-01</td><td>NOC</td><td>done</td>" in html
