"""Schema migrations: upgrading an empty database gives exactly the models' schema (on SQLite and on the
real PostgreSQL), a database an earlier dcoflow made with create_all is adopted and keeps its rows, and a
second upgrade changes nothing. A model changed without a migration fails the first test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, event, inspect, pool, select, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, create_engine
from typer.testing import CliRunner

import dcoflow.models.tables  # noqa: F401  (registers every table)
from dcoflow.core.db import alembic_config, head_revision, init_db, schema_status, session_scope
from dcoflow.flows.cli.db import app as db_app
from dcoflow.models.emulation import EmulationOutcome, Outcome
from dcoflow.models.emulation import Severity as AlertSeverity
from dcoflow.models.followup import Incident
from dcoflow.models.followup import Severity as IncidentSeverity

ALL_REVISIONS = ["0001_baseline", "0002_severity_enum_types", "0003_stix_random_sco_id", "0004_free_text_unbounded"]


@pytest.fixture()
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(db_url, poolclass=pool.NullPool)
    yield eng
    eng.dispose()


def _diffs(engine: Engine, metadata: MetaData = SQLModel.metadata) -> list[Any]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        found = [d for d in compare_metadata(ctx, metadata) if not _is_version_table(d)]
        return found + _enum_diffs(conn, metadata)


def _enum_diffs(conn: Connection, metadata: MetaData) -> list[Any]:
    """On PostgreSQL, each enum column's type name and labels against the models' (alembic's comparison
    sees neither, so two models' enums sharing one type went unnoticed)."""
    if conn.dialect.name != "postgresql":
        return []
    found: list[Any] = []
    for table in metadata.sorted_tables:
        for col in table.columns:
            if isinstance(col.type, SAEnum):
                have = _pg_enum_of(conn, table.name, col.name)
                want = (col.type.name, list(col.type.enums))
                if have != want:
                    found.append(("enum_type", table.name, col.name, have, want))
    return found


def _pg_enum_of(conn: Connection, table: str, column: str) -> tuple[str, list[str]] | None:
    """The enum type of ``table.column`` on PostgreSQL and its labels in order (None: no such column)."""
    udt = conn.execute(text(
        "SELECT udt_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = :t AND column_name = :c"),
        {"t": table, "c": column}).scalar_one_or_none()
    if udt is None:
        return None
    labels = conn.execute(text(
        "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "WHERE t.typname = :n AND t.typnamespace = current_schema()::regnamespace ORDER BY e.enumsortorder"),
        {"n": udt}).scalars().all()
    return (udt, list(labels))


def _is_version_table(diff: Any) -> bool:
    return isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == "alembic_version"


def _ddl_during(engine: Engine, call: Any) -> list[str]:
    """The statements other than reads that ``call`` sent to the database."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement.strip())

    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    reads = ("SELECT", "PRAGMA", "BEGIN", "WITH", "SHOW")
    return [s for s in sent if not s.upper().startswith(reads)]


def test_empty_database_upgrades_to_exactly_the_models(engine: Engine) -> None:
    init_db(engine)
    assert schema_status(engine).current == head_revision()
    assert _diffs(engine) == []
    # The comparison is live: a column the models have and no migration made shows up.
    changed = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["emulation_outcome"].append_column(Column("added_without_migration", Integer))
    assert [d[0] for d in _diffs(engine, changed)] == ["add_column"]


def test_create_all_database_is_adopted_and_keeps_its_rows(engine: Engine, db_url: str) -> None:
    SQLModel.metadata.create_all(engine)
    # As an older dcoflow left it: before emulation_outcome.compromise, and before meetings had items.
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE meeting_item"))
        conn.execute(text("DROP INDEX ix_emulation_outcome_tool"))
        conn.execute(text("ALTER TABLE emulation_outcome DROP COLUMN compromise"))
        conn.execute(text(
            "INSERT INTO emulation_outcome (dco_id, step_id, technique_id, tool, version, outcome, operator, "
            "source, telemetry, recorded_at) VALUES ('dco-old', 's1', 'T1003.001', 'EDR', 1, 'ALERTED', 'amy', "
            "'MANUAL', :tel, :at)"), {"tel": json.dumps([]), "at": datetime(2026, 1, 2, tzinfo=UTC)})
    status = schema_status(engine)
    assert status.current is None and status.adopt

    init_db(engine)

    assert schema_status(engine).current == head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()
    assert _diffs(engine) == []
    with session_scope(db_url) as s:  # the normal engine path works on the adopted database
        old = s.exec(select(EmulationOutcome).where(EmulationOutcome.dco_id == "dco-old")).scalars().one()
        assert old.outcome == Outcome.ALERTED and old.compromise is False
        s.add(EmulationOutcome(dco_id="dco-old", step_id="s1", technique_id="T1003.001", tool="EDR", version=2,
                               outcome=Outcome.PREVENTED, operator="amy", compromise=True))
    with Session(engine) as s:
        rows = s.exec(select(EmulationOutcome.version, EmulationOutcome.compromise)
                      .order_by(EmulationOutcome.version)).all()
        assert [tuple(r) for r in rows] == [(1, False), (2, True)]


def test_create_all_database_at_the_baseline_is_only_stamped(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)
    with engine.connect() as conn:
        made = set(inspect(conn).get_table_names())
    ddl = _ddl_during(engine, lambda: init_db(engine))
    # The baseline was not run over it (no table it already had was created or altered), only stamped.
    touched = [s for s in ddl if any(f" {t} " in f" {s} ".replace('"', " ").replace("(", " ") for t in made)]
    assert touched == [], touched
    assert any("INSERT INTO alembic_version" in s for s in ddl)
    assert schema_status(engine).current == head_revision() and _diffs(engine) == []


def test_second_upgrade_is_a_no_op(engine: Engine) -> None:
    init_db(engine)
    assert _ddl_during(engine, lambda: init_db(engine)) == []
    # and alembic itself, past init_db's own check, finds nothing to do
    with engine.begin() as conn:
        assert _ddl_during(engine, lambda: command.upgrade(alembic_config(conn), "head")) == []
    assert schema_status(engine).up_to_date and _diffs(engine) == []


def test_cli_current_and_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    before = runner.invoke(db_app, ["current", "--url", url, "--json"])
    assert before.exit_code == 0, before.output
    assert json.loads(before.output) | {"database": None} == {
        "database": None, "current": None, "head": head_revision(), "pending": ALL_REVISIONS,
        "adopt": False, "up_to_date": False}
    done = runner.invoke(db_app, ["upgrade", "--url", url])
    assert done.exit_code == 0 and f"upgraded from (none) to {head_revision()}" in done.output
    again = runner.invoke(db_app, ["upgrade", "--url", url])
    assert again.exit_code == 0 and f"already at {head_revision()}" in again.output
    after = json.loads(runner.invoke(db_app, ["current", "--url", url, "--json"]).output)
    assert after["current"] == head_revision() and after["up_to_date"] and after["pending"] == []
    tables = inspect(create_engine(url)).get_table_names()
    assert "emulation_outcome" in tables and "alembic_version" in tables


def test_every_enum_type_name_means_one_set_of_labels() -> None:
    """Two enum classes must not share a PostgreSQL type name: only one of them gets created, and the
    other's column silently takes its labels (models/emulation.Severity vs models/followup.Severity did)."""
    seen: dict[str, tuple[type[Any] | None, tuple[str, ...], str]] = {}
    for table in SQLModel.metadata.sorted_tables:
        for col in table.columns:
            if not isinstance(col.type, SAEnum):
                continue
            assert col.type.name, f"{table.name}.{col.name}: enum type has no name"
            mine = (col.type.enum_class, tuple(col.type.enums), f"{table.name}.{col.name}")
            first = seen.setdefault(col.type.name, mine)
            assert first[:2] == mine[:2], f"type {col.type.name!r} used by {first[2]} and {mine[2]} for different enums"
    assert seen["outcome_severity"][0] is AlertSeverity and seen["incident_severity"][0] is IncidentSeverity
    assert "severity" not in seen


def _incident(severity: IncidentSeverity) -> dict[str, Any]:
    at = datetime(2026, 3, 4, tzinfo=UTC)
    return {"id": "inc-1", "finding_key": "sighting--1", "dco_id": "dco-old", "kind": "true-positive-hit",
            "technique_id": "T1003.001", "observed_data_ids": json.dumps([]), "summary": "lsass read",
            "severity": severity.name, "stix_id": "incident--1", "status": "PENDING", "deliveries": json.dumps({}),
            "attempts": 0, "created_at": at, "updated_at": at}


def _insert(conn: Connection, table: str, row: dict[str, Any]) -> None:
    conn.execute(text(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"), row)


def test_database_at_the_baseline_upgrades_severity_types_keeping_rows(engine: Engine, db_url: str) -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001_baseline")
        row = _incident(IncidentSeverity.CRITICAL)
        _insert(conn, "followup_incident", row)
        conn.execute(text(
            "INSERT INTO emulation_outcome (dco_id, step_id, technique_id, tool, version, outcome, severity, operator, "
            "source, telemetry, compromise, recorded_at) VALUES ('dco-old', 's1', 'T1003.001', 'EDR', 1, 'ALERTED', "
            "'INFO', 'amy', 'MANUAL', '[]', false, :at)"), {"at": datetime(2026, 1, 2, tzinfo=UTC)})
    postgres = engine.dialect.name == "postgresql"
    if postgres:  # the wart 0002 fixes: one `severity` type, emulation's labels, under both columns
        with engine.connect() as conn:
            wart = ("severity", ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"])
            assert _pg_enum_of(conn, "followup_incident", "severity") == wart
            assert _pg_enum_of(conn, "emulation_outcome", "severity") == wart
    assert schema_status(engine).pending == ALL_REVISIONS[1:]

    init_db(engine)

    assert schema_status(engine).current == head_revision() and _diffs(engine) == []
    with Session(engine) as s:
        incident = s.get(Incident, "inc-1")
        assert incident is not None and incident.summary == "lsass read"
        assert incident.severity is IncidentSeverity.CRITICAL
        assert s.scalars(select(EmulationOutcome)).one().severity is AlertSeverity.INFO
    if postgres:
        with engine.connect() as conn:
            assert _pg_enum_of(conn, "followup_incident", "severity") == (
                "incident_severity", ["LOW", "MEDIUM", "HIGH", "CRITICAL"])
            assert _pg_enum_of(conn, "emulation_outcome", "severity") == (
                "outcome_severity", ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"])
            assert conn.execute(text("SELECT to_regtype('severity')")).scalar_one() is None
    with session_scope(db_url) as s:  # the new type takes a new row through the normal engine path
        s.add(Incident(**(_incident(IncidentSeverity.LOW) | {
            "id": "inc-2", "finding_key": "sighting--2", "observed_data_ids": [], "deliveries": {},
            "severity": IncidentSeverity.LOW})))
    with Session(engine) as s:
        got = sorted((i.id, i.severity) for i in s.scalars(select(Incident)))
        assert got == [("inc-1", IncidentSeverity.CRITICAL), ("inc-2", IncidentSeverity.LOW)]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgres_incident_severity_refuses_info_and_downgrade_restores_the_shared_type(engine: Engine) -> None:
    init_db(engine)
    with engine.connect() as conn:
        kind = conn.execute(text(
            "SELECT t.typtype FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = 'followup_incident'::regclass AND a.attname = 'severity'")).scalar_one()
        assert kind == "e"  # an enum of its own, not text
        with pytest.raises(DBAPIError, match="invalid input value for enum incident_severity"):
            conn.execute(text("SELECT 'INFO'::incident_severity"))
    with engine.begin() as conn:
        row = _incident(IncidentSeverity.HIGH)
        _insert(conn, "followup_incident", row)
        command.downgrade(alembic_config(conn), "0001_baseline")
        assert _pg_enum_of(conn, "followup_incident", "severity") == (
            "severity", ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"])
        assert conn.execute(text("SELECT to_regtype('incident_severity')")).scalar_one() is None
        assert conn.execute(text("SELECT severity::text FROM followup_incident")).scalar_one() == "HIGH"
    init_db(engine)
    assert _diffs(engine) == []
