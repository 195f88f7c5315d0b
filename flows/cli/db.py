"""`dco db …`: the database schema — where it stands against the packaged migrations, and upgrading it.
Every engine upgrades its database on first use; operators of a shared PostgreSQL run `dco db upgrade`
once, before starting workers, to migrate at a moment they choose and see what changed."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import Engine, pool
from sqlmodel import create_engine

from dcoflow.core.db import SchemaStatus, init_db, schema_status
from dcoflow.core.settings import get_settings
from dcoflow.flows.cli.output import console, handle_errors, print_json

app = typer.Typer(help="Database schema: show and apply migrations", no_args_is_help=True)

UrlOpt = Annotated[str | None, typer.Option("--url", help="Database URL (default: DCO_DATABASE_URL or the "
                                            "SQLite file in DCO_DATA_DIR).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document instead of text.")]


def _engine(url: str | None) -> Engine:
    # A plain engine: get_engine() would upgrade on connect, and `current` must not change anything.
    return create_engine(url or get_settings().db_url, poolclass=pool.NullPool)


def _doc(engine: Engine, status: SchemaStatus) -> dict[str, Any]:
    return {"database": engine.url.render_as_string(hide_password=True), "current": status.current,
            "head": status.head, "pending": status.pending, "adopt": status.adopt,
            "up_to_date": status.up_to_date}


def _describe(status: SchemaStatus) -> str:
    if status.adopt:
        then = f", then applies {', '.join(status.pending)}" if status.pending else ""
        return f"made by create_all before migrations: an upgrade stamps it at the baseline{then}"
    if status.current is None:
        return "empty: an upgrade creates every table"
    if status.pending:
        return f"behind: {len(status.pending)} revision(s) to apply: {', '.join(status.pending)}"
    return "up to date"


@app.command("current")
@handle_errors
def current(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Show the database's schema revision, the newest packaged one, and what an upgrade would apply."""
    engine = _engine(url)
    try:
        status = schema_status(engine)
    finally:
        engine.dispose()
    if as_json:
        print_json(_doc(engine, status))
        return
    console.print(f"database: {engine.url.render_as_string(hide_password=True)}", markup=False)
    console.print(f"current: {status.current or '(none)'}  head: {status.head}", markup=False)
    console.print(_describe(status), markup=False)


@app.command("upgrade")
@handle_errors
def upgrade(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Upgrade the database to the newest schema (adopting one that create_all made)."""
    engine = _engine(url)
    try:
        before = schema_status(engine)
        init_db(engine)
        after = schema_status(engine)
    finally:
        engine.dispose()
    if as_json:
        print_json({**_doc(engine, after), "from": before.current, "applied": before.pending,
                    "adopted": before.adopt})
        return
    if before.up_to_date and before.current is not None:
        console.print(f"already at {after.current}", markup=False)
        return
    adopted = " (adopted a create_all database at the baseline)" if before.adopt else ""
    console.print(f"upgraded from {before.current or '(none)'} to {after.current}{adopted}", markup=False)
