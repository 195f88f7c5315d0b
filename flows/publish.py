"""The ``publish-dco-taxii`` flow: send a DCO's STIX 2.1 bundle to a TAXII 2.1 collection.

Thin: parameters, the Secret block, then ``dcoflow.tasks.reporting.taxii_publish.publish_to_taxii`` (what
`dco publish` runs), and the artifact. Credentials come from the connector registry: ``username`` and the
Prefect Secret block ``secret_block``'s password, else ``DCO_TAXII_USER`` / ``DCO_TAXII_PASSWORD`` for the
configured root (``DCO_TAXII_URL``, used when ``api_root`` is empty). Re-running publishes only what the
collection does not hold yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import Field, SecretStr

from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.flows.forms import described
from dcoflow.flows.secrets import load_secret
from dcoflow.tasks.reporting.taxii_publish import publish_to_taxii_task, release_policy

ENV_URL = "DCO_TAXII_URL"
ENV_COLLECTION = "DCO_TAXII_COLLECTION"
ENV_USER = "DCO_TAXII_USER"
ENV_PASSWORD = "DCO_TAXII_PASSWORD"


def taxii_password(secret_block: str | None) -> SecretStr | None:
    """The password in a Prefect Secret block (none without a block: the registry's configured one applies)."""
    return SecretStr(load_secret(secret_block)) if secret_block else None


@flow(name="publish-dco-taxii", log_prints=True)
@described
def publish_dco_taxii(
    dco: Annotated[str, Field(description="DCO id or name.")],
    api_root: Annotated[str | None, Field(
        description=f"TAXII 2.1 API root URL (https://server/api1/); empty: {ENV_URL}.")] = None,
    collection_id: Annotated[str | None, Field(
        description=f"Id of a writable collection of that API root; empty: {ENV_COLLECTION}.")] = None,
    secret_block: Annotated[str | None, Field(
        description=f"Prefect Secret block holding the TAXII password; else {ENV_PASSWORD}.")] = None,
    allow_amber_strict: Annotated[bool, Field(
        description="Publish a TLP:AMBER+STRICT DCO (TLP:RED never is).")] = False,
    max_tlp: Annotated[str | None, Field(
        description="Highest TLP the collection may receive (clear, green, amber, amber+strict); "
                    "default amber, amber+strict with allow_amber_strict.")] = None,
    releasable: Annotated[list[str] | None, Field(
        description="Classification/releasability statements the collection's readers are cleared for; "
                    "objects with any other statement are never sent.")] = None,
    username: Annotated[str | None, Field(description=f"TAXII user; default {ENV_USER}.")] = None,
    since: Annotated[datetime | None, Field(description="Only evidence created/modified from then on.")] = None,
    attack_source: Annotated[str | None, Field(description="ATT&CK bundle; the configured one when empty.")] = None,
) -> dict[str, Any]:
    """Publish DCO ``dco``'s bundle to TAXII collection ``collection_id``; returns the counts."""
    log = get_run_logger()
    password = taxii_password(secret_block)
    registry = ConnectorRegistry.from_settings().with_secrets(
        taxii_password=password.get_secret_value() if password else None)
    result: dict[str, Any] = publish_to_taxii_task(
        dco, api_root=api_root or None, collection_id=collection_id or None, username=username or None,
        since=since, allow_amber_strict=allow_amber_strict,
        policy=release_policy(max_tlp, releasable, allow_amber_strict), attack_source=attack_source,
        registry=registry,
    ).as_dict()
    collection_id = result["collection_id"]
    lines = [f"# {result['dco_id']} → TAXII", "",
             f"collection `{collection_id}` on {result['api_root']}", "",
             "| sent | skipped | refused | failed |", "|---|---|---|---|",
             f"| {result['sent']} | {result['skipped']} | {result['refused']} | {result['failed']} |"]
    lines += [f"- failed `{f['id']}`: {f.get('message') or 'no reason given'}" for f in result["failures"][:20]]
    create_markdown_artifact("\n".join(lines), key=f"taxii-{result['dco_id']}".lower(),
                             description="TAXII publication")
    if result["failed"]:
        log.warning("%s: %d objects failed: %s", result["dco_id"], result["failed"], result["failures"][:5])
    log.info("%s: %d sent, %d skipped, %d refused, %d failed", result["dco_id"], result["sent"],
             result["skipped"], result["refused"], result["failed"])
    return result
