"""Recording hunts: STIX validity, idempotency, resuming a failed hunt, exercise separation, triage."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import stix2
from sqlmodel import Session, select

from dcoflow.core.db import session_scope
from dcoflow.core.errors import NotFoundError, ValidationError
from dcoflow.models.audit import AuditEvent
from dcoflow.models.emulation import dco_marker
from dcoflow.models.exercise import ExerciseWindow, is_exercise
from dcoflow.models.hunt_run import HuntRun, HuntStatus, TriageVerdict, Verdict, derive_hunt_key
from dcoflow.models.hunt_summary import hunt_summary, summary_markdown
from dcoflow.models.hunting import HuntOutcome, RuleInfo, RuleMatch, SkippedRule
from dcoflow.models.repository.hunt import triage_history
from dcoflow.models.repository.stix_store import count_objects, latest_objects, object_history, put_objects
from dcoflow.models.stix.common import DCOFLOW_IDENTITY_ID
from dcoflow.models.stix.markings import TLP2_IDS, Tlp
from dcoflow.models.stix.rows import StixObjectRow
from dcoflow.tasks.conduct.hunt_record import exercise_markers_for, record_hunt, run_hunt_batches
from dcoflow.tasks.conduct.triage import triage_hit

from .helpers import sysmon_event


def _outcome(rules: dict[str, RuleInfo], *, marker: str | None = None) -> HuntOutcome:
    events = [sysmon_event(1), sysmon_event(2, host="SRV02"),
              sysmon_event(3, cmd=f"procdump64.exe -ma lsass.exe {marker}" if marker else "procdump64.exe x")]
    return HuntOutcome(
        source="security-datasets:test.zip",
        rules_run=[rules["procdump"], rules["safeboot"]],
        matches=[RuleMatch(rules["procdump"], count=7, events=events)],
        skipped=[SkippedRule("broken.yml", None, "not YAML")],
        events_read=1234,
    )


def _count_rows(dco: str) -> int:
    with session_scope() as s:
        return len(list(s.exec(select(StixObjectRow).where(StixObjectRow.dco_id == dco))))


def test_objects_validate_with_stix2(dco: str, rules: dict[str, RuleInfo], catalog: Any) -> None:
    with session_scope() as s:
        run = record_hunt(s, dco, _outcome(rules), hunt_key="k1", catalog=catalog)
    with session_scope() as s:
        objs = latest_objects(s, dco)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        by_type.setdefault(o["type"], []).append(o)
        stix2.parse(o, allow_custom=True)
    assert {"indicator", "relationship", "observed-data", "sighting", "grouping", "process", "file",
            "user-account", "identity", "marking-definition", "directory"} <= set(by_type)
    ind = next(o for o in by_type["indicator"] if o["x_dco_rule_id"] == rules["procdump"].rule_id)
    assert ind["pattern_type"] == "sigma" and ind["pattern"].startswith("title: Procdump Execution")
    assert ind["x_dco_technique_ids"] == ["T1036", "T1003.001"]
    assert TLP2_IDS[Tlp.AMBER] in ind["object_marking_refs"] and len(ind["object_marking_refs"]) == 2
    assert ind["x_dco_id"] == dco and ind["created_by_ref"] == DCOFLOW_IDENTITY_ID
    # indicates → the ATT&CK stix ids of the techniques; v19's T1685 (the rule's tag, kept as written) maps
    # onto v18.1's T1562.001 through models/attack/newer_ids.py, so it is indicated and not unknown
    targets = {r["target_ref"] for r in by_type["relationship"]}
    assert targets == {catalog.get_technique(t).stix_id for t in ("T1036", "T1003.001", "T1562.001")}
    safeboot = next(o for o in by_type["indicator"] if o["x_dco_rule_id"] == rules["safeboot"].rule_id)
    assert safeboot["x_dco_technique_ids"] == ["T1685"]
    assert run.unknown_techniques == []
    sig = by_type["sighting"][0]
    assert sig["sighting_of_ref"] == ind["id"] and sig["x_dco_hunt_run"] == run.id
    assert sig["first_seen"].startswith("2024-05-01T10:00:00")
    assert {s["x_dco_host"] for s in by_type["sighting"]} == {"wks01.corp.local", "srv02"}
    proc = next(p for p in by_type["process"] if p.get("command_line", "").startswith("procdump64.exe -ma"))
    image = next(f for f in by_type["file"] if f["id"] == proc["image_ref"])
    assert image["name"] == "procdump64.exe"
    assert image["hashes"] == {"SHA-1": "a" * 40, "MD5": "b" * 32, "SHA-256": "c" * 64}
    grouping = by_type["grouping"][0]
    assert grouping["context"] == "suspicious-activity" and sig["id"] in grouping["object_refs"]
    assert {r["rule_id"]: r["hits"] for r in grouping["x_dco_rules"]} == {
        rules["procdump"].rule_id: 7, rules["safeboot"].rule_id: 0}
    bundle = stix2.parse({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objs}, allow_custom=True)
    assert len(bundle.objects) == len(objs)


def test_record_twice_writes_nothing_new(dco: str, rules: dict[str, RuleInfo], catalog: Any) -> None:
    with session_scope() as s:
        first = record_hunt(s, dco, _outcome(rules), hunt_key="same", catalog=catalog)
        version = first.version
    rows = _count_rows(dco)
    with session_scope() as s:
        audits = len(list(s.exec(select(AuditEvent).where(AuditEvent.dco_id == dco))))
    with session_scope() as s:
        again = record_hunt(s, dco, _outcome(rules), hunt_key="same", catalog=catalog)
        assert again.id == first.id and again.version == version
    assert _count_rows(dco) == rows
    with session_scope() as s:
        assert len(list(s.exec(select(AuditEvent).where(AuditEvent.dco_id == dco)))) == audits
        assert len(list(s.exec(select(HuntRun)))) == 1
        run = s.exec(select(HuntRun)).one()
        assert run.status == HuntStatus.COMPLETED and run.hits == 7 and run.events_read == 1234
        assert run.skipped == [{"path": "broken.yml", "rule_id": None, "reason": "not YAML"}]


def test_failed_halfway_keeps_evidence_and_rerun_completes(
    dco: str, rules: dict[str, RuleInfo], catalog: Any
) -> None:
    rule_list = [rules["procdump"], rules["safeboot"], rules["ps_persist"]]
    called: list[list[str]] = []

    def engine(fail_on: str | None) -> Any:
        def run(batch: list[RuleInfo]) -> HuntOutcome:
            called.append([r.rule_id for r in batch])
            if fail_on and any(r.rule_id == fail_on for r in batch):
                raise RuntimeError("telemetry reader crashed")
            matches = [RuleMatch(r, 2, [sysmon_event(10 + i), sysmon_event(20 + i)])
                       for i, r in enumerate(batch) if r is rules["procdump"]]
            return HuntOutcome(source="evtx:set", rules_run=list(batch), matches=matches, events_read=50)
        return run

    key = derive_hunt_key([r.rule_id for r in rule_list], "evtx:set")
    with pytest.raises(RuntimeError):
        run_hunt_batches(dco, rule_list, engine(rules["safeboot"].rule_id), hunt_key=key, source="evtx:set",
                         catalog=catalog, batch_size=1)
    with session_scope() as s:
        run = s.exec(select(HuntRun)).one()
        assert run.status == HuntStatus.FAILED and "telemetry reader crashed" in (run.error or "")
        assert run.recorded_rules == [rules["procdump"].rule_id]
        assert len([o for o in latest_objects(s, dco, ["sighting"])]) == 2  # batch 1 kept
    called.clear()
    done = run_hunt_batches(dco, rule_list, engine(None), hunt_key=key, source="evtx:set", catalog=catalog,
                            batch_size=1)
    assert called == [[rules["safeboot"].rule_id], [rules["ps_persist"].rule_id]]  # finished rules skipped
    assert done.status == HuntStatus.COMPLETED and done.hits == 2 and done.error is None
    with session_scope() as s:
        grouping = latest_objects(s, dco, ["grouping"])[0]
        indicators = {o["id"] for o in latest_objects(s, dco, ["indicator"])}
        assert len(indicators) == 3 and indicators <= set(grouping["object_refs"])
        actions = [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.dco_id == dco))]
        assert actions.count("hunt-failed") == 1 and actions.count("hunt-run") == 1
    # a third run of the completed hunt changes nothing
    rows = _count_rows(dco)
    run_hunt_batches(dco, rule_list, engine(None), hunt_key=key, source="evtx:set", catalog=catalog)
    assert _count_rows(dco) == rows


def test_clean_run_and_resumed_run_store_the_same_objects(
    dco: str, rules: dict[str, RuleInfo], catalog: Any
) -> None:
    """Resuming must converge to what an uninterrupted run stores (same ids)."""
    rule_list = [rules["procdump"], rules["safeboot"]]

    def engine(batch: list[RuleInfo]) -> HuntOutcome:
        return HuntOutcome(source="s", rules_run=list(batch),
                           matches=[RuleMatch(r, 1, [sysmon_event(5)]) for r in batch if r is rules["procdump"]])

    run_hunt_batches(dco, rule_list, engine, hunt_key="a", source="s", catalog=catalog)
    with session_scope() as s:
        counts = count_objects(s, dco)
    assert counts["sighting"] == 1 and counts["indicator"] == 2 and counts["grouping"] == 1


def test_exercise_separation_marker_and_windows() -> None:
    marker = dco_marker("op-1")
    assert is_exercise(sysmon_event(1, cmd=f"cmd /c whoami & rem {marker.lower()}"), [marker])
    assert is_exercise({"nested": {"tags": ["x", marker]}}, [marker])
    assert not is_exercise(sysmon_event(1), [marker])
    window = ExerciseWindow(datetime(2024, 5, 1, 9, 59, tzinfo=UTC), datetime(2024, 5, 1, 10, 1, tzinfo=UTC),
                            host="wks01")
    assert is_exercise(sysmon_event(1, when="2024-05-01 10:00:30.000"), [window])  # host matched by short name
    assert not is_exercise(sysmon_event(1, host="SRV02", when="2024-05-01 10:00:30.000"), [window])
    assert not is_exercise(sysmon_event(1, when="2024-05-01 10:05:00.000"), [window])
    anywhere = ExerciseWindow(window.start, window.end)
    assert is_exercise(sysmon_event(1, host="SRV02", when="2024-05-01T10:00:30Z"), [anywhere])
    assert not is_exercise({"Image": "x"}, [window])  # no time: cannot be placed in a window
    assert not is_exercise(sysmon_event(1), [])


def test_exercise_flag_recorded_from_marker_and_emulation_outcomes(
    dco: str, rules: dict[str, RuleInfo], catalog: Any
) -> None:
    # an emulation outcome as conduct_emulation records it (docs/STIX.md): a window on SRV02
    outcome_sighting = {
        "type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
        "created": "2024-05-01T09:00:00.000Z", "modified": "2024-05-01T09:00:00.000Z",
        "sighting_of_ref": "attack-pattern--00000000-0000-4000-8000-000000000000",
        "first_seen": "2024-05-01T09:59:00.000Z", "last_seen": "2024-05-01T10:01:00.000Z",
        "x_dco_step_id": "step-1", "x_dco_target": "srv02.corp.local", "x_dco_outcome": "logged",
    }
    with session_scope() as s:
        put_objects(s, [outcome_sighting], dco)
    with session_scope() as s:
        markers = exercise_markers_for(s, dco)
        assert markers[0] == f"DCO-{dco}" and isinstance(markers[1], ExerciseWindow)
        run = record_hunt(s, dco, _outcome(rules, marker=f"DCO-{dco}"), hunt_key="ex", catalog=catalog)
    with session_scope() as s:
        flags = {o["x_dco_host"] + "/" + o["id"][-4:]: o["x_dco_exercise"]
                 for o in latest_objects(s, dco, ["sighting"]) if "x_dco_rule_id" in o}
    assert sorted(flags.values()) == [False, True, True]  # WKS01 real; SRV02 in the window; the marked one
    assert run.exercise_hits == 2


def test_summary_hits_by_technique_rule_host_and_gaps(dco: str, rules: dict[str, RuleInfo], catalog: Any) -> None:
    outcome = _outcome(rules)
    outcome.no_logsource = [rules["ps_persist"]]
    with session_scope() as s:
        run = record_hunt(s, dco, outcome, hunt_key="sum", catalog=catalog)
    summary = hunt_summary(run)
    assert summary.by_technique == {"T1003.001": 7, "T1036": 7, "T1685": 0}
    assert summary.by_rule[0]["rule_id"] == rules["procdump"].rule_id and summary.by_rule[0]["hits"] == 7
    assert summary.by_host == {"wks01.corp.local": 2, "srv02": 1}
    assert summary.gaps == [{"rule_id": rules["ps_persist"].rule_id}]
    md = summary_markdown(summary)
    assert "| T1003.001 | 7 |" in md and "Visibility gaps (1 rules" in md and "T1685" in md


def test_record_needs_an_existing_dco(settings: Any, rules: dict[str, RuleInfo]) -> None:
    with pytest.raises(NotFoundError), session_scope() as s:
        record_hunt(s, "no-such-op", _outcome(rules), hunt_key="x", catalog=None)


def test_triage_writes_versioned_verdicts_and_opinions(dco: str, rules: dict[str, RuleInfo], catalog: Any) -> None:
    with session_scope() as s:
        record_hunt(s, dco, _outcome(rules), hunt_key="t", catalog=catalog)
        sid = latest_objects(s, dco, ["sighting"])[0]["id"]
    with session_scope() as s:
        first = triage_hit(s, sid, "true-positive", "alice", "procdump on lsass",
                           at=datetime(2024, 5, 2, 8, 0, tzinfo=UTC))
        assert first.version == 1 and first.verdict == Verdict.TRUE_POSITIVE
    with session_scope() as s:
        same = triage_hit(s, sid, Verdict.TRUE_POSITIVE, "alice", "procdump on lsass")
        assert same.version == 1  # repeating a verdict records nothing
        second = triage_hit(s, sid, "benign", "alice", "admin's sanctioned dump",
                            at=datetime(2024, 5, 2, 9, 0, tzinfo=UTC))
        assert second.version == 2
        other = triage_hit(s, sid, "false-positive", "bob", None)
    with session_scope() as s:
        history = object_history(s, first.opinion_id)
        assert [o["opinion"] for o in history] == ["agree", "neutral"]
        assert history[0]["created"] == history[1]["created"] == "2024-05-02T08:00:00.000Z"
        assert history[1]["modified"] == "2024-05-02T09:00:00.000Z"
        assert history[1]["object_refs"] == [sid] and history[1]["x_dco_verdict"] == "benign"
        for o in history:
            stix2.parse(o, allow_custom=True)
        assert object_history(s, other.opinion_id)[0]["opinion"] == "disagree"
        assert [(v.analyst, v.version) for v in triage_history(s, sid)] == [("alice", 1), ("alice", 2), ("bob", 1)]
        assert len(list(s.exec(select(TriageVerdict)))) == 3
        with pytest.raises(ValidationError, match="did you mean"):
            triage_hit(s, sid, "maybe", "alice")
        with pytest.raises(NotFoundError):
            triage_hit(s, "sighting--00000000-0000-4000-8000-000000000000", "benign", "alice")


PG_URL = os.environ.get("DCO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.mark.postgres
def test_record_hunt_idempotent_on_postgresql(rules: dict[str, RuleInfo], catalog: Any) -> None:
    import sqlalchemy as sa
    from sqlmodel import SQLModel, create_engine

    import dcoflow.models.tables  # noqa: F401
    from dcoflow.models.operation import DcoSpec, DcoState
    from dcoflow.models.repository.operation import create_operation, transition

    admin = create_engine(PG_URL)
    try:
        with admin.connect() as c:
            c.execute(sa.text("select 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {PG_URL} is unreachable: {exc}")
    schema = f"hunt_{uuid.uuid4().hex[:12]}"
    with admin.begin() as c:
        c.execute(sa.text(f'create schema "{schema}"'))
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        SQLModel.metadata.create_all(engine)
        spec = DcoSpec.model_validate({"name": "PG Hunt Op", "objective": "idempotency on postgres",
                                       "type": "threat-hunt", "threat_profile": {"techniques": ["T1003"]}})
        with Session(engine) as s:
            op = create_operation(s, spec, "tester")
            for state in (DcoState.PLANNED, DcoState.APPROVED):
                transition(s, op, state, "tester", "approved for the test")
            dco = op.id
            s.commit()
        counts = []
        for _ in range(2):
            with Session(engine) as s:
                run = record_hunt(s, dco, _outcome(rules), hunt_key="pg", catalog=catalog)
                s.commit()
                counts.append((len(list(s.exec(select(StixObjectRow)))), run.version,
                               len(list(s.exec(select(AuditEvent))))))
        assert counts[0] == counts[1] and counts[0][0] > 10
    finally:
        engine.dispose()
        with admin.begin() as c:
            c.execute(sa.text(f'drop schema "{schema}" cascade'))
        admin.dispose()
