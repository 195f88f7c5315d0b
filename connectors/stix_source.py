"""STIX objects from where a user points: a bundle file (.json / .json.gz) or a TAXII 2.1 collection
(``taxii+https://[user:pass@]server/api-root/collections/<id>/``). Used by the IR commands (incident, indicators)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from dcoflow.connectors.attack.source import decompress_if_gzip, parse_source
from dcoflow.connectors.taxii import TaxiiClient
from dcoflow.core.errors import ContentError


def read_stix(source: str, *, types: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every object of the bundle file or TAXII collection ``source``."""
    spec = parse_source(source)
    if spec.kind == "taxii":
        api_root, _, rest = spec.location.partition("/collections/")
        collection = rest.strip("/")
        with TaxiiClient(api_root + "/", username=spec.username, password=spec.password) as client:
            return list(client.get_objects(collection, types=types))
    if spec.kind == "url":
        raise ContentError(f"{spec.display}: give a bundle file or a taxii+https:// collection URL", object=source)
    path = Path(spec.location)
    if not path.is_file():
        raise ContentError(f"STIX bundle {path} does not exist", object=str(path))
    try:
        doc = orjson.loads(decompress_if_gzip(path.read_bytes(), str(path)))
    except orjson.JSONDecodeError as exc:
        raise ContentError(f"{path} is not JSON: {exc}", object=str(path)) from exc
    objects = doc.get("objects") if isinstance(doc, dict) and doc.get("type") == "bundle" else None
    if not isinstance(objects, list):
        raise ContentError(f"{path} is not a STIX bundle (no type: bundle with objects)", object=str(path))
    found = [o for o in objects if isinstance(o, dict)]
    return [o for o in found if o.get("type") in types] if types else found
