"""DCO events go out only where something can react to them."""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow
from prefect.settings import PREFECT_API_URL, temporary_settings

from dcoflow.tasks import events


def test_no_server_no_event_and_no_throwaway_server(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(events, "emit_event", lambda **kw: sent.append(kw))
    with temporary_settings(updates={PREFECT_API_URL: None}):
        assert events.events_reach_a_server() is False
        events.emit("dco.phase.approved", "d1")  # returns at once: would otherwise start a local server
    assert sent == []
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        events.emit("dco.phase.approved", "d1", {"actor": "me"})
    assert [(e["event"], e["resource"]["prefect.resource.name"], e["payload"]) for e in sent] == [
        ("dco.phase.approved", "d1", {"actor": "me"})]


def test_inside_a_flow_run_events_are_emitted(prefect_harness: None) -> None:
    @flow
    def probe() -> bool:
        return events.events_reach_a_server()

    assert probe() is True
    assert events.resource("d1") == {"prefect.resource.id": "dco.d1", "prefect.resource.name": "d1"}
