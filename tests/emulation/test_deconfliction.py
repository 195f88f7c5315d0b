"""Deconfliction with a window and an answer: the notice (hosts, window, marker) goes to the webhook and the
inbox before live steps, steps wait for the acknowledgement when the RoE ask for it, hunts in another DCO
classify that DCO's exercise activity and name it, and overlapping live windows are flagged at approval."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dcoflow.connectors.webhook import WebhookClient
from dcoflow.core.db import session_scope
from dcoflow.core.errors import GateError
from dcoflow.models.hunting import HuntOutcome, RuleInfo, RuleMatch
from dcoflow.models.operation import DcoSpec, DcoState
from dcoflow.models.plan import EmulationStep
from dcoflow.models.repository.operation import audit_trail, create_operation, get_operation
from dcoflow.models.repository.stix_store import latest_objects
from dcoflow.tasks.conduct.deconfliction import acknowledge, inbox, notify_window, wait_for_acknowledgement
from dcoflow.tasks.conduct.emulation.steps import execute_step
from dcoflow.tasks.conduct.hunt_record import record_hunt
from dcoflow.tasks.lifecycle import change_state

from .helpers import approve

NOW = datetime.now(UTC)
WINDOW = {"start": (NOW - timedelta(days=1)).isoformat(), "end": (NOW + timedelta(days=1)).isoformat()}


def _set_roe(dco: str, **roe: Any) -> None:
    with session_scope() as s:
        op = get_operation(s, dco)
        op.spec = {**op.spec, "window": WINDOW,
                   "rules_of_engagement": {**op.spec["rules_of_engagement"], **roe}}
        s.add(op)


def _spec(name: str, hosts: list[str], window: dict[str, str] | None = None) -> DcoSpec:
    return DcoSpec.model_validate({
        "name": name, "objective": "hunt credential theft", "type": "threat-hunt",
        "scope": {"platforms": ["windows"], "hosts": hosts}, "threat_profile": {"techniques": ["T1003.001"]},
        "window": window or WINDOW,
    })


def test_notice_goes_to_webhook_and_inbox_and_steps_wait_for_the_ack(emulation_dco: str) -> None:
    _set_roe(emulation_dco, deconfliction_ack_required=True)
    seen: list[dict[str, Any]] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(202, json={"id": f"n-{len(seen)}"})

    hook = WebhookClient("https://soc.example.org/hook", secret="k", transport=httpx.MockTransport(receiver))
    with session_scope() as s:
        rows = notify_window(s, get_operation(s, emulation_dco), webhook=hook)
        assert [(r.notified, r.status) for r in rows] == [("soc-duty@example.org", "sent")]
        notify_window(s, get_operation(s, emulation_dco), webhook=hook)  # told once
    [notice] = seen
    payload = notice["payload"]
    assert notice["event"] == "emulation.deconfliction" and payload["marker"] == f"DCO-{emulation_dco}"
    assert payload["hosts"] and payload["window"]["start"] == WINDOW["start"] and payload["ack_required"]

    with session_scope() as s:
        [item] = inbox(s)
        assert item["dco"] == emulation_dco and item["status"] == "sent" and item["hosts"] == payload["hosts"]
        op, step = get_operation(s, emulation_dco), s.get(EmulationStep, f"{emulation_dco}-s1")
        assert step is not None
        with pytest.raises(GateError, match="acknowledge the deconfliction notice"):
            execute_step(s, step, op, dry_run=False)
    assert not wait_for_acknowledgement(lambda: False, 0.2, poll_s=0.05)  # a bounded wait

    res = CliRunner().invoke(_cli(), ["ack", emulation_dco, "--by", "SOC duty officer (CyOC)"])
    assert res.exit_code == 0, res.output
    with session_scope() as s:
        assert inbox(s) == [] and inbox(s, include_acknowledged=True)[0]["status"] == "acknowledged"
        acks = [e for e in audit_trail(s, emulation_dco) if e.action == "deconfliction-acknowledged"]
        assert [e.actor for e in acks] == ["SOC duty officer (CyOC)"]
        op, step = get_operation(s, emulation_dco), s.get(EmulationStep, f"{emulation_dco}-s4")
        assert step is not None
        assert execute_step(s, step, op, dry_run=False).status.value == "running"  # the manual step may start
    res = CliRunner().invoke(_cli(), ["ack", emulation_dco, "--by", ""])
    assert res.exit_code == 2


def _cli() -> Any:
    from dcoflow.flows.cli.deconflict import app

    return app


def test_a_receiver_can_acknowledge_in_its_answer(emulation_dco: str) -> None:
    def receiver(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"acknowledged": True, "by": "SIEM on-call"})

    hook = WebhookClient("https://soc.example.org/hook", secret="k", transport=httpx.MockTransport(receiver))
    with session_scope() as s:
        [row] = notify_window(s, get_operation(s, emulation_dco), webhook=hook)
        assert row.status == "acknowledged" and "SIEM on-call" in (row.receipt or "")


def test_hunt_in_another_dco_names_the_deconflicted_exercise(emulation_dco: str) -> None:
    host = "lab-host-7"
    _set_roe(emulation_dco, allowed_hosts=[host])
    with session_scope() as s:
        notify_window(s, get_operation(s, emulation_dco))
        acknowledge(s, emulation_dco, "SOC duty officer")
        hunter = create_operation(s, _spec("Credential hunt", ["corp-ws-1"]), "analyst").id
    approve(hunter)
    marker = f"DCO-{emulation_dco}"
    inside = NOW.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    outside = (NOW - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    events = [
        {"Computer": f"{host}.lab.example", "UtcTime": inside, "CommandLine": f"sh -c ': {marker}; whoami'",
         "EventRecordID": 1},
        {"Computer": "corp-ws-1", "UtcTime": inside, "CommandLine": f"sh -c ': {marker}; whoami'", "EventRecordID": 2},
        {"Computer": host, "UtcTime": outside, "CommandLine": f"sh -c ': {marker}; whoami'", "EventRecordID": 3},
        {"Computer": host, "UtcTime": inside, "CommandLine": "whoami", "EventRecordID": 4},
    ]
    rule = RuleInfo(rule_id="r-whoami", title="Whoami", path="whoami.yml", tags=["attack.t1033"],
                    technique_ids=["T1033"])
    outcome = HuntOutcome(source="edr", rules_run=[rule], matches=[RuleMatch(rule, len(events), events)],
                          events_read=len(events))
    with session_scope() as s:
        run = record_hunt(s, hunter, outcome, hunt_key="k", catalog=None)
        assert run.hits == 4 and run.exercise_hits == 1
        sightings = {o["x_dco_host"]: o for o in latest_objects(s, hunter, ["sighting"])}
    exercise = [o for o in sightings.values() if o["x_dco_exercise"]]
    assert len(exercise) == 1 and exercise[0]["x_dco_exercise_of"] == emulation_dco
    assert exercise[0]["x_dco_host"].startswith(host)
    assert all("x_dco_exercise_of" not in o for o in sightings.values() if not o["x_dco_exercise"])


def test_unacknowledged_window_is_not_exercise(emulation_dco: str) -> None:
    host = "lab-host-8"
    _set_roe(emulation_dco, allowed_hosts=[host])
    with session_scope() as s:
        notify_window(s, get_operation(s, emulation_dco))  # told, never acknowledged
        hunter = create_operation(s, _spec("Second hunt", ["corp-ws-2"]), "analyst").id
    approve(hunter)
    event = {"Computer": host, "UtcTime": NOW.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
             "CommandLine": f": DCO-{emulation_dco}; id", "EventRecordID": 9}
    rule = RuleInfo(rule_id="r-id", title="id", path="id.yml", technique_ids=["T1033"])
    with session_scope() as s:
        run = record_hunt(s, hunter, HuntOutcome(source="edr", rules_run=[rule],
                                                 matches=[RuleMatch(rule, 1, [event])]), hunt_key="k", catalog=None)
        assert run.exercise_hits == 0


def test_overlapping_live_windows_are_flagged_at_approval(emulation_dco: str) -> None:
    _set_roe(emulation_dco)  # the lab DCO: approved, this host, a window around now
    with session_scope() as s:
        op = get_operation(s, emulation_dco)
        hosts = op.dco.rules_of_engagement.allowed_hosts
        other = create_operation(s, _spec("Overlapping hunt", [*hosts, "corp-ws-3"]), "analyst").id
        apart = create_operation(s, _spec("Elsewhere hunt", ["corp-ws-4"]), "analyst").id
    for dco in (other, apart):
        change_state(dco, DcoState.PLANNED, "planner")
    out = change_state(other, DcoState.APPROVED, "J. Smith (OCIO)")
    [warning] = out["warnings"]
    assert emulation_dco in warning and hosts[0].split(".")[0].lower() in warning
    with session_scope() as s:
        approval = next(e for e in audit_trail(s, other) if e.to_state == "approved")
        assert approval.details["warnings"] == [warning]
    assert "warnings" not in change_state(apart, DcoState.APPROVED, "J. Smith (OCIO)")
