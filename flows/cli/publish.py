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
    from dcoflow.connectors.registry import ConnectorRegistry
    from dcoflow.tasks.reporting.taxii_publish import publish_to_taxii, release_policy

    registry = ConnectorRegistry.from_settings()
    if password_env is not None:  # the operator named where the password is: it goes to this server only
        registry = registry.with_secrets(taxii_password=os.environ.get(password_env) or None)
    result = publish_to_taxii(dco, api_root=taxii, collection_id=collection, username=user, since=since,
                              allow_amber_strict=allow_amber_strict,
                              policy=release_policy(max_tlp, releasable, allow_amber_strict),
                              attack_source=attack_source, registry=registry)
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

