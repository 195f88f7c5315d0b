"""Triage as a human step: the triage_hunt flow under the session's Prefect test server, paused and
resumed with typed input, and driven by verdicts; true positives emit dco.finding.true-positive."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from sqlmodel import select

from dcoflow.core.db import session_scope
from dcoflow.core.errors import NotFoundError, ValidationError
from dcoflow.flows.triage import triage_hunt
from dcoflow.models.emulation import dco_marker
from dcoflow.models.hunt_run import TriageVerdict, Verdict
from dcoflow.models.hunting import HuntOutcome, RuleInfo, RuleMatch
from dcoflow.tasks.conduct.hunt_record import record_hunt
from dcoflow.tasks.conduct.triage import UntriagedHit, untriaged_hits, verdicts_for

from .helpers import sysmon_event

pytestmark = pytest.mark.prefect


def _hunt(dco: str, rules: dict[str, RuleInfo]) -> str:
    """Three real procdump hits, one exercise hit (carries the DCO marker), one safeboot hit."""
    procdump = [sysmon_event(1), sysmon_event(2, host="SRV02"), sysmon_event(3, host="SRV03"),
                sysmon_event(4, cmd=f"procdump64.exe -ma lsass.exe {dco_marker(dco)}")]
    safeboot = [sysmon_event(5, image=r"C:\Windows\System32\reg.exe",
                             cmd=r"reg delete HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot\Minimal /f")]
    outcome = HuntOutcome(source="evtx:test", rules_run=[rules["procdump"], rules["safeboot"]],
                          matches=[RuleMatch(rules["procdump"], count=4, events=procdump),
                                   RuleMatch(rules["safeboot"], count=1, events=safeboot)], events_read=50)
    with session_scope() as s:
        return record_hunt(s, dco, outcome, hunt_key="triage-test", catalog=None, exercise_markers=[dco_marker(dco)]).id


def _hits(dco: str) -> list[UntriagedHit]:
    with session_scope() as s:
        return untriaged_hits(s, dco)[1]


def _finding_events(dco: str, since: datetime, expected: int) -> list[Any]:
    """Events reach the server's store asynchronously: poll until the expected number arrived.

    ``since``: DCO ids come from names, so earlier tests on the session's server used the same resource.
    """
    wanted = EventFilter(occurred=EventOccurredFilter(since=since),
                         event=EventNameFilter(name=["dco.finding.true-positive"]),
                         resource=EventResourceFilter(id=[f"dco.{dco}"]))
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            found = client.read_events(filter=wanted, limit=50).events  # the server's maximum
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.3)


def test_listing_and_matching_verdicts(dco: str, rules: dict[str, RuleInfo]) -> None:
    with session_scope() as s:
        assert untriaged_hits(s, dco) == (None, [])  # never hunted
    run_id = _hunt(dco, rules)
    with session_scope() as s:
        run, hits = untriaged_hits(s, dco, run_id)
        with pytest.raises(NotFoundError):
            untriaged_hits(s, dco, "hunt-nope")
    assert run is not None and run.id == run_id
    assert len(hits) == 4  # the exercise hit is not a finding to triage
    assert {h.host for h in hits} == {"wks01.corp.local", "srv02", "srv03"}
    procdump, safeboot = rules["procdump"].rule_id, rules["safeboot"].rule_id
    one = next(h for h in hits if h.rule_id == procdump)
    chosen, unmatched = verdicts_for(hits, {procdump: "false-positive", one.sighting_id: "benign", "nope": "skip"})
    assert chosen[one.sighting_id] == "benign" and unmatched == ["nope"]
    assert sorted(chosen.values()) == ["benign", "false-positive", "false-positive"]
    assert all(h.sighting_id not in chosen for h in hits if h.rule_id == safeboot)
    with pytest.raises(ValidationError, match="unknown verdict"):
        verdicts_for(hits, {procdump: "maybe"})


def test_verdicts_path_records_and_emits_for_true_positives(prefect_harness: None, dco: str,
                                                            rules: dict[str, RuleInfo]) -> None:
    start = datetime.now(UTC)
    _hunt(dco, rules)
    procdump = rules["procdump"].rule_id
    benign = next(h for h in _hits(dco) if h.host == "srv03").sighting_id
    result = triage_hunt(dco=dco, verdicts={procdump: "true-positive", benign: "benign"}, pause_for_input=False,
                         analyst="automation")
    assert result["recorded"] == {"true-positive": 2, "benign": 1}
    assert result["untriaged"] == 1 and result["escalation_events"] == 2 and result["unmatched"] == []
    assert [h.rule_id for h in _hits(dco)] == [rules["safeboot"].rule_id]
    events = _finding_events(dco, start, 2)
    assert len(events) == 2
    assert {e.payload["finding_key"] for e in events} == {
        h for h in result_sightings(dco, Verdict.TRUE_POSITIVE)}
    # again: nothing new to triage without input, nothing emitted
    again = triage_hunt(dco=dco, pause_for_input=False)
    assert (again["hits"], again["recorded"], again["escalation_events"]) == (1, {}, 0)


def result_sightings(dco: str, verdict: Verdict) -> set[str]:
    with session_scope() as s:
        rows = s.exec(select(TriageVerdict).where(TriageVerdict.dco_id == dco, TriageVerdict.verdict == verdict))
        return {r.sighting_id for r in rows}


def test_paused_run_resumes_with_the_analysts_form(resume_when_paused: Callable[..., Any], dco: str,
                                                   rules: dict[str, RuleInfo]) -> None:
    start = datetime.now(UTC)
    _hunt(dco, rules)
    tp, fp, *rest = _hits(dco)
    form = [{"sighting_id": tp.sighting_id, "verdict": "true-positive", "note": "dumped lsass"},
            {"sighting_id": fp.sighting_id, "verdict": "false-positive", "note": "admin backup"},
            *({"sighting_id": h.sighting_id, "verdict": "skip"} for h in rest)]
    result = resume_when_paused(lambda: triage_hunt(dco=dco, pause_timeout_s=60), dco,
                                {"analyst": "dave", "hits": form})
    assert result["recorded"] == {"true-positive": 1, "false-positive": 1} and result["untriaged"] == len(rest)
    with session_scope() as s:
        rows = {r.sighting_id: r for r in s.exec(select(TriageVerdict).where(TriageVerdict.dco_id == dco))}
    assert (rows[tp.sighting_id].analyst, rows[tp.sighting_id].note) == ("dave", "dumped lsass")
    assert rows[fp.sighting_id].verdict == Verdict.FALSE_POSITIVE and len(rows) == 2
    [event] = _finding_events(dco, start, 1)
    assert event.payload["finding_key"] == tp.sighting_id
