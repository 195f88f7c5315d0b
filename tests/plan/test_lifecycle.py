"""DCO state machine, audit log and plan storage on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.db import session_scope
from dcoflow.core.errors import NotFoundError, StateError
from dcoflow.flows.demo import DEMO_OPERATION
from dcoflow.models.audit import AuditEvent
from dcoflow.models.operation import DcoState
from dcoflow.models.plan import EmulationStep, HuntHypothesis, StepStatus
from dcoflow.models.repository.operation import audit_trail, create_operation, get_operation, transition
from dcoflow.tasks.plan.planning import load_content, make_plan, store_plan


def test_state_machine_and_audit(db_url: str) -> None:
    spec = load_operation_file(DEMO_OPERATION)
    with session_scope(db_url) as s:
        op = create_operation(s, spec, "alice")
        assert create_operation(s, spec, "alice") is op  # same spec: idempotent
    with session_scope(db_url) as s:
        op = get_operation(s, "APT29 purple team (demo)")  # by name, case-insensitive
        with pytest.raises(StateError, match="allowed next: planned"):
            transition(s, op, DcoState.CONDUCTING, "alice")
        transition(s, op, DcoState.PLANNED, "alice", "planned")
        transition(s, op, DcoState.APPROVED, "bob (OCIO)", "go")
        assert op.approved_by == "bob (OCIO)" and op.approved_at is not None
        with pytest.raises(StateError, match="changed since it was read"):
            transition(s, op, DcoState.CONDUCTING, "alice", expected_version=1)
        with pytest.raises(StateError, match="needs a reason"):
            transition(s, op, DcoState.CLOSED, "alice")
    with session_scope(db_url) as s:
        trail = audit_trail(s, spec.slug)
        assert [(e.from_state, e.to_state) for e in trail] == [
            (None, "draft"), ("draft", "planned"), ("planned", "approved")]
        assert trail[-1].actor == "bob (OCIO)"
    with session_scope(db_url) as s, pytest.raises(NotFoundError, match="did you mean"):
        get_operation(s, "apt29-purple-team-dem")


def test_audit_log_is_append_only(db_url: str) -> None:
    spec = load_operation_file(DEMO_OPERATION)
    with session_scope(db_url) as s:
        create_operation(s, spec, "alice")
    with pytest.raises(StateError, match="append-only"), session_scope(db_url) as s:
        ev = s.exec(select(AuditEvent)).first()
        assert ev is not None
        ev.actor = "mallory"
        s.add(ev)
        s.flush()
    with session_scope(db_url) as s:
        assert [e.actor for e in audit_trail(s, spec.slug)] == ["alice"]


def test_store_plan_is_idempotent_and_keeps_started_steps(settings: Any, catalog: Any) -> None:
    spec = load_operation_file(DEMO_OPERATION)
    atomics, rules, warnings = load_content(settings)
    assert not warnings
    with session_scope() as s:
        create_operation(s, spec, "alice")
    plan = make_plan(spec.slug, spec, catalog, atomics, rules)
    with session_scope() as s:
        store_plan(s, plan, "alice")
    with session_scope() as s:
        steps = list(s.exec(select(EmulationStep)))
        hyps = list(s.exec(select(HuntHypothesis)))
        assert len(steps) == plan.summary["emulation_steps"] > 0
        assert len(hyps) == plan.summary["hypotheses"] > 0
        done = steps[0]
        done.status = StepStatus.DONE
        done.procedure_name = "ran by hand"
        s.add(done)
    with session_scope() as s:  # re-plan: no duplicates, the started step untouched
        store_plan(s, make_plan(spec.slug, spec, catalog, atomics, rules), "alice")
    with session_scope() as s:
        assert len(list(s.exec(select(EmulationStep)))) == len(steps)
        assert len(list(s.exec(select(HuntHypothesis)))) == len(hyps)
        kept = s.get(EmulationStep, done.id)
        assert kept is not None and kept.procedure_name == "ran by hand"
        assert get_operation(s, spec.slug).state == DcoState.PLANNED
