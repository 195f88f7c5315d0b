"""Export a DCO's evidence as one validated STIX 2.1 bundle file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import stix2
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from dcoflow.connectors.attack.published import published_objects
from dcoflow.core.errors import ContentError
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.repository.stix_store import latest_objects
from dcoflow.models.stix.bundle import dco_bundle
from dcoflow.models.stix.common import dcoflow_identity, marking_refs
from dcoflow.models.stix.rows import stix_now


def build_dco_bundle(
    session: Session, dco: str, catalog: Catalog, published: str | None = None,
    objects: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The DCO's bundle of ``objects`` (default: the newest version of every object it stored)."""
    op = get_operation(session, dco)
    spec = op.dco
    refs, definitions = marking_refs(spec.marking)

    as_published = published_objects(catalog.source)

    return dco_bundle(
        dco_id=op.id,
        name=f"DCO {spec.name}",
        description=f"{spec.objective} (state: {op.state.value})",
        published_at=published or stix_now(),
        objects=latest_objects(session, op.id) if objects is None else objects,
        published=as_published.get,
        identity=dcoflow_identity(),
        marking_refs=refs,
        extra_markings=definitions,
    )


def validate_bundle(bundle: dict[str, Any]) -> None:
    """Every object must parse as STIX 2.1 (custom x_dco_ properties allowed) before it leaves."""
    for obj in bundle["objects"]:
        try:
            stix2.parse(obj, allow_custom=True, version="2.1")
        except Exception as exc:  # stix2 raises many unrelated exception types
            raise ContentError(f"invalid STIX object: {exc}", system="stix", object=obj.get("id")) from exc


def export_dco_bundle(session: Session, dco: str, catalog: Catalog, out_dir: Path) -> Path:
    bundle = build_dco_bundle(session, dco, catalog)
    validate_bundle(bundle)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{bundle['objects'][0]['x_dco_id']}-stix-bundle.json"
    path.write_text(json.dumps(bundle, indent=1), encoding="utf-8")
    return path


@task(name="export-stix-bundle", cache_policy=NO_CACHE)
def export_dco_bundle_task(dco: str, catalog: Catalog, out_dir: Path) -> Path:
    """The lifecycle flow's export step: the same function as `dco export stix` (tasks/reporting/run.py)."""
    from dcoflow.tasks.reporting.run import export_stix

    return Path(export_stix(dco, out_dir, catalog=catalog)["bundle"])
