"""The ``sync_content`` flow: fill a content folder (``DCO_CONTENT_DIR`` layout) from upstream."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from dcoflow.connectors.content_sync import sync_content_dir
from dcoflow.core.errors import ConfigError
from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.models.attack.catalog import DOMAINS
from dcoflow.tasks.retry import retry_when_retryable

PARTS = ("attack", "sigma", "atomics")


def sync_parts(dest: str | Path, parts: Sequence[str], domains: Sequence[str], attack_version: str | None,
               sigma_ref: str, atomics_ref: str) -> list[dict[str, str]]:
    """``sync_content_dir`` with the archive limit from the settings, as rows (part, path, detail);
    the ``sync-content`` flow runs it per part, ``dco sync-content`` for all at once."""
    settings = get_settings()
    results = sync_content_dir(
        Path(dest), parts=tuple(parts), domains=tuple(domains), attack_version=attack_version,
        sigma_ref=sigma_ref, atomics_ref=atomics_ref, max_member_bytes=settings.max_archive_member_bytes,
    )
    return [{"part": r.part, "path": r.path, "detail": r.detail} for r in results]


sync_part_task = task(name="sync-content-part", cache_policy=NO_CACHE,
                      retry_condition_fn=retry_when_retryable, retries=1)(sync_parts)


@flow(name="sync-content")
@described
def sync_content(
    content_dir: Annotated[str | None, Field(description="Content folder; DCO_CONTENT_DIR when empty.")] = None,
    parts: Annotated[list[str] | None, Field(description="attack, sigma, atomics (all when empty).")] = None,
    domains: Annotated[list[str] | None, Field(description="enterprise, mobile, ics (all when empty).")] = None,
    attack_version: Annotated[str | None, Field(description="ATT&CK release, e.g. 18.1; newest when empty.")] = None,
    sigma_ref: Annotated[str, Field(description="SigmaHQ tag or branch ('latest': newest release).")] = "latest",
    atomics_ref: Annotated[str, Field(description="Atomic Red Team tag or branch.")] = "master",
) -> list[dict[str, str]]:
    """Download ATT&CK bundles, Sigma rules and atomics into the content folder, one task per part.

    ``content_dir`` defaults to DCO_CONTENT_DIR; ``parts`` to attack, sigma, atomics; ``domains`` to
    enterprise, mobile, ics; ``attack_version`` (e.g. 18.1) to the newest; ``sigma_ref`` / ``atomics_ref``
    are tags or branches (``latest`` = the newest GitHub release).
    """
    dest = content_dir or get_settings().content_dir
    if dest is None:
        raise ConfigError("no content folder to sync into", object="DCO_CONTENT_DIR",
                          hint="set DCO_CONTENT_DIR or pass content_dir")
    results: list[dict[str, str]] = []
    for part in parts or PARTS:
        results += sync_part_task(dest, [part], domains or DOMAINS, attack_version, sigma_ref, atomics_ref)
    for r in results:
        get_run_logger().info("%s: %s (%s)", r["part"], r["path"], r["detail"])
    return results
