"""`dco publish`: send a DCO's STIX 2.1 bundle to a TAXII 2.1 collection.

Wiring: the ``publish`` entry of ``AREAS`` in flows/cli/__init__.py (merged: the command is ``dco publish``).
Runs the task directly (no Prefect server needed); the ``publish-dco-taxii`` flow does the same for the UI.
Exit codes: 0 all sent or already there, 1 some objects failed on the server, 2 an error (refused marking,
collection not writable, server unreachable).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated

import typer

from dcoflow.flows.cli.output import console, handle_errors, print_json, table, u
from dcoflow.models.stix.markings import ReleasePolicy, Tlp

app = typer.Typer(help="Publish DCO evidence to TAXII 2.1.")


@app.command("publish")
@handle_errors
def publish(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    taxii: Annotated[str | None, typer.Option(
        "--taxii", help="TAXII 2.1 API root URL, e.g. https://server/api1/ (default DCO_TAXII_URL).")] = None,
    collection: Annotated[str | None, typer.Option(
        "--collection", help="Id of a writable collection (default DCO_TAXII_COLLECTION).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="TAXII user (default DCO_TAXII_USER).")] = None,
    password_env: Annotated[str | None, typer.Option(
        "--password-env", help="Environment variable holding the TAXII password (default: the "
                               "DCO_TAXII_PASSWORD setting).")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only evidence created/modified from then on.")] = None,
    allow_amber_strict: Annotated[bool, typer.Option(
        "--allow-amber-strict", help="Publish a TLP:AMBER+STRICT DCO (TLP:RED never is).")] = False,
    max_tlp: Annotated[str | None, typer.Option(
        "--max-tlp", help="Highest TLP the collection may receive: clear, green, amber, amber+strict "
                          "(default amber; amber+strict with --allow-amber-strict).")] = None,
    releasable: Annotated[list[str] | None, typer.Option(
        "--releasable", help="A classification/releasability statement the collection's readers are cleared "
                             "for, as the DCO's marking writes it (e.g. 'NATO UNCLASSIFIED — REL TO DCO CELL'); "
                             "repeatable. Objects with any other statement are never sent.")] = None,
    attack_source: Annotated[str | None, typer.Option("--attack", help="ATT&CK bundle file, URL or TAXII.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of a table.")] = False,
) -> None:
    """Publish a DCO's bundle; re-running sends only what the collection does not hold yet."""
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.connectors.taxii import TaxiiClient
    from dcoflow.core.db import session_scope
    from dcoflow.core.errors import ConfigError
    from dcoflow.core.settings import get_settings
    from dcoflow.tasks.reporting.taxii_publish import publish_dco

    # Options override the settings (DCO_TAXII_*, from the environment or .env) one by one.
    settings = get_settings()
    taxii = taxii or settings.taxii_url
    collection = collection or settings.taxii_collection
    user = user or settings.taxii_user
    if not taxii:
        raise ConfigError("no TAXII API root to publish to", object="DCO_TAXII_URL",
                          hint="pass --taxii or set DCO_TAXII_URL")
    if not collection:
        raise ConfigError("no TAXII collection to publish to", object="DCO_TAXII_COLLECTION",
                          hint="pass --collection or set DCO_TAXII_COLLECTION")
    if password_env is not None:
        password = os.environ.get(password_env) or None
        where = f"${password_env}"
    else:
        password = settings.taxii_password.get_secret_value() if settings.taxii_password else None
        where = "DCO_TAXII_PASSWORD"
    if user and password is None:
        raise ConfigError(f"--user {user} given but {where} is empty", object=where.lstrip("$"),
                          hint="set DCO_TAXII_PASSWORD or name a variable holding it with --password-env")
    policy = release_policy(max_tlp, releasable, allow_amber_strict)
    catalog = load_catalog(attack_source)
    with TaxiiClient(taxii, username=user, password=password) as client, session_scope() as session:
        result = publish_dco(session, dco, catalog, client, collection, since=since,
                             allow_amber_strict=allow_amber_strict, policy=policy)
    if as_json:
        print_json(result.as_dict())
    else:
        table(f"{result.dco_id} → {result.api_root}collections/{result.collection_id}/", ["measure", "value"],
              [("sent", result.sent), ("skipped", result.skipped), ("refused (marking)", result.refused),
               ("failed", result.failed), ("chunks", result.chunks),
               ("de-duplicated", "yes" if result.deduplicated else "no (collection not readable)")])
        for r in result.refusals[:20]:
            console.print(f"[yellow]refused[/] {u(r['id'])}: {u(r['reason'])}")
        for f in result.failures[:20]:
            why = f.get("message") or "no reason given"
            console.print(f"[red]failed[/] {u(f['id'])} ({u(f['version'])}): {u(why)}")
    if result.failed:
        raise typer.Exit(1)


def release_policy(max_tlp: str | None, releasable: list[str] | None, allow_amber_strict: bool) -> ReleasePolicy:
    """The collection's allowed marking set from the command line (flow parameters use the same)."""
    from dcoflow.core.errors import ValidationError

    if max_tlp is None:
        level = Tlp.AMBER_STRICT if allow_amber_strict else Tlp.AMBER
    else:
        try:
            level = Tlp(max_tlp.lower().removeprefix("tlp:"))
        except ValueError:
            raise ValidationError(f"--max-tlp {max_tlp!r} is not a TLP level", field="max_tlp",
                                  hint=f"one of {', '.join(t.value for t in Tlp if t != Tlp.RED)}") from None
    return ReleasePolicy(max_tlp=level, statements=frozenset(releasable or ()))
