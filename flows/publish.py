"""The ``publish-dco-taxii`` flow: send a DCO's STIX 2.1 bundle to a TAXII 2.1 collection.

Thin: parameters, credentials, the ATT&CK catalog, then ``dcoflow.tasks.reporting.taxii_publish``. Credentials:
``username`` (else ``DCO_TAXII_USER``), the password from the Prefect Secret block ``secret_block`` (else
``DCO_TAXII_PASSWORD``); ``api_root`` falls back to ``DCO_TAXII_URL`` when empty. Re-running publishes only
what the collection does not hold yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import Field, SecretStr

from dcoflow.connectors.attack import load_catalog
from dcoflow.core.errors import ConfigError
from dcoflow.core.settings import get_settings
from dcoflow.flows.cli.publish import release_policy
from dcoflow.flows.forms import described
from dcoflow.flows.secrets import load_secret
from dcoflow.tasks.reporting.taxii_publish import publish_dco_task

ENV_URL = "DCO_TAXII_URL"
ENV_COLLECTION = "DCO_TAXII_COLLECTION"
ENV_USER = "DCO_TAXII_USER"
ENV_PASSWORD = "DCO_TAXII_PASSWORD"


def taxii_password(secret_block: str | None) -> SecretStr | None:
    """The password from a Prefect Secret block, else ``DCO_TAXII_PASSWORD``, else none."""
    if secret_block:
        return SecretStr(load_secret(secret_block))
    return get_settings().taxii_password


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
    settings = get_settings()
    root = api_root or settings.taxii_url
    if not root:
        raise ConfigError("no TAXII API root given", object="api_root", hint=f"pass api_root or set {ENV_URL}")
    collection_id = collection_id or settings.taxii_collection
    if not collection_id:
        raise ConfigError("no TAXII collection given", object="collection_id",
                          hint=f"pass collection_id or set {ENV_COLLECTION}")
    result: dict[str, Any] = publish_dco_task(
        dco, load_catalog(attack_source), root, collection_id,
        username=username or settings.taxii_user, password=taxii_password(secret_block),
        since=since, allow_amber_strict=allow_amber_strict,
        policy=release_policy(max_tlp, releasable, allow_amber_strict),
    )
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
