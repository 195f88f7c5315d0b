"""No silent truncation (issue 8, item 4): free text is stored whole on SQLite and PostgreSQL alike; an
identifier longer than its column is refused on both with one error naming table and column, and nothing of
that transaction is stored. PostgreSQL enforces VARCHAR lengths and SQLite ignores them, so without the
check the same write passed on one and died with StringDataRightTruncation on the other."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, pool, text
from sqlmodel import select

from dcoflow.core.db import alembic_config, get_engine, session_scope, upsert
from dcoflow.core.errors import ValidationError
from dcoflow.models.followup import Retest
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.operation import audit_trail, create_operation, record_event
from dcoflow.models.stix.rows import StixObjectRow
from dcoflow.tasks.follow_up.retests import schedule_retest

WHEN = datetime(2026, 12, 13, 9, tzinfo=UTC)
# What the lifecycle's follow-up built for the demo DCO: a reason naming every technique with an open action.
TECHNIQUES = [f"T{1000 + i}.{i % 7:03d}" for i in range(120)]


def _dco(db_url: str) -> str:
    spec = DcoSpec.model_validate({"name": "Long values", "objective": "store them whole", "type": "threat-hunt",
                                   "threat_profile": {"techniques": ["T1003.001"]}})
    with session_scope(db_url) as s:
        return create_operation(s, spec, "x" * 500).id  # an actor name far past the old VARCHAR(120)


def test_free_text_is_stored_whole(db_url: str) -> None:
    dco = _dco(db_url)
    reason = f"follow-up|2026-12-13|{','.join(TECHNIQUES)}"
    assert len(reason) > 1000
    with session_scope(db_url) as s:
        # A deployment name longer than the old VARCHAR(200); the submitter stands in for Prefect's scheduler.
        schedule_retest(s, dco, TECHNIQUES, reason, WHEN, deployment="d" * 300,
                        submit=lambda _deployment, _params, _when, _key: "flow-run-1")
        record_event(s, dco, "analyst " * 100, "note", {"text": "y" * 10_000})
    with session_scope(db_url) as s:
        stored = s.exec(select(Retest).where(Retest.dco_id == dco)).one()
        assert stored.reason == reason and stored.deployment == "d" * 300
        trail = audit_trail(s, dco)
        assert trail[0].actor == "x" * 500 and trail[-1].actor == "analyst " * 100


def test_overlong_identifier_is_refused_by_name_and_nothing_is_stored(db_url: str) -> None:
    dco = _dco(db_url)
    with pytest.raises(ValidationError, match=r"41 characters do not fit followup_retest\.id \(at most 40\)"), \
            session_scope(db_url) as s:
        record_event(s, dco, "analyst", "before the refused row")
        s.add(Retest(id="r" * 41, dco_id=dco, reason="why", scheduled_for=WHEN))
    with pytest.raises(ValidationError, match=r"stix_object\.id \(at most 120\)"), session_scope(db_url) as s:
        upsert(s, StixObjectRow, [{"id": "indicator--" + "0" * 200, "modified": "2026-12-06T00:00:00.000Z",
                                   "dco_id": dco, "type": "indicator", "object": {}}], ["id", "modified", "dco_id"])
    with session_scope(db_url) as s:
        assert [e.action for e in audit_trail(s, dco)] == ["create"]
        assert s.exec(select(Retest)).all() == [] and s.exec(select(StixObjectRow)).all() == []


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_raw_overlong_update_is_one_clear_error(db_url: str) -> None:
    """What the check cannot see (a hand-written UPDATE) still ends as one line, not a driver traceback."""
    dco = _dco(db_url)
    with pytest.raises(ValidationError, match="the database refused a value: value too long"), \
            session_scope(db_url) as s:
        s.exec(text("UPDATE operation SET id = :v WHERE id = :d").bindparams(v="z" * 65, d=dco))  # type: ignore[call-overload]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_downgrade_refuses_to_cut_a_long_value(db_url: str) -> None:
    dco = _dco(db_url)
    get_engine(db_url)
    engine = create_engine(db_url, poolclass=pool.NullPool)
    try:
        with pytest.raises(Exception, match=r"audit_event\.actor holds a value of 500 characters"), \
                engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0003_stix_random_sco_id")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == \
                "0004_free_text_unbounded"
            assert conn.execute(text("SELECT actor FROM audit_event WHERE dco_id = :d"), {"d": dco}).scalar_one() \
                == "x" * 500
    finally:
        engine.dispose()
