"""ATT&CK bundles with duplicate ids, null names, dangling relationships or wrong field types (issue 14)."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from dcoflow.connectors.attack import _build
from dcoflow.connectors.attack.cache import CatalogCache
from dcoflow.core.errors import ContentError, NotFoundError
from dcoflow.models.attack.build import build_catalog


@pytest.fixture(scope="module")
def ics(shared_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress((shared_dir / "attack" / "ics-attack-18.1.json.gz").read_bytes()))
    return data


def _techniques(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in bundle["objects"] if o["type"] == "attack-pattern" and not o.get("revoked")
            and not o.get("x_mitre_deprecated")]


def _ext(o: dict[str, Any]) -> str:
    return next(r["external_id"] for r in o["external_references"]
                if r.get("source_name", "").startswith("mitre-") and r.get("external_id"))


@pytest.mark.parametrize("impostor", ["revoked", "deprecated", "older"])
def test_duplicate_external_id_resolves_to_the_current_newest(ics: dict[str, Any], impostor: str) -> None:
    bundle = copy.deepcopy(ics)
    real, other = _techniques(bundle)[:2]
    fake = copy.deepcopy(other)
    fake["id"] = "attack-pattern--00000000-0000-4000-8000-000000000001"
    fake["external_references"] = copy.deepcopy(real["external_references"])
    fake["name"] = "IMPOSTOR"
    if impostor == "revoked":
        fake["revoked"], fake["modified"] = True, "2099-01-01T00:00:00.000Z"
    elif impostor == "deprecated":
        fake["x_mitre_deprecated"], fake["modified"] = True, "2099-01-01T00:00:00.000Z"
    else:
        fake["modified"] = "2000-01-01T00:00:00.000Z"
    for order in (bundle["objects"] + [fake], [fake, *bundle["objects"]]):  # the same answer in any order
        cat = build_catalog({"type": "bundle", "objects": order}, content_hash="x", source="dup")
        tech = cat.technique(_ext(real))
        assert tech is not None and tech.name == real["name"]
        assert "duplicate ATT&CK id" in cat.report


@pytest.mark.parametrize("name", [None, "", 5])
def test_null_names_are_reported_not_printed_as_none(ics: dict[str, Any], name: Any) -> None:
    bundle = copy.deepcopy(ics)
    target = _techniques(bundle)[0]
    target["name"] = name
    cat = build_catalog(bundle, content_hash="x", source="names")
    tech = cat.technique(_ext(target))
    assert tech is not None and tech.name != "None"
    if name != 5:
        assert "has no name" in cat.report


@pytest.mark.parametrize("end", ["source_ref", "target_ref"])
def test_dangling_relationships_are_counted(ics: dict[str, Any], end: str) -> None:
    bundle = copy.deepcopy(ics)
    rels = [o for o in bundle["objects"] if o["type"] == "relationship"][:3]
    for r in rels:
        r[end] = "attack-pattern--00000000-0000-4000-8000-0000000000ff"
    cat = build_catalog(bundle, content_hash="x", source="dangling")
    assert "not in the bundle" in cat.report and f"{len(rels)} skipped" in cat.report.split(" — ")[0]


@pytest.mark.parametrize(("key", "value"), [("kill_chain_phases", "x"), ("x_mitre_platforms", 5),
                                            ("external_references", "T0800"), ("kill_chain_phases", [1, 2])])
def test_wrong_field_types_skip_the_object(ics: dict[str, Any], key: str, value: Any) -> None:
    bundle = copy.deepcopy(ics)
    target = _techniques(bundle)[0]
    ext = _ext(target)
    target[key] = value
    cat = build_catalog(bundle, content_hash="x", source="types")
    if key != "external_references":
        with pytest.raises(NotFoundError):
            cat.technique(ext)
    assert "malformed" in cat.report


@pytest.mark.parametrize("bundle", [{"objects": [{"id": "x", "type": ["list"]}]}, {"objects": 5}, [1, 2],
                                    {"objects": [{"type": "x-mitre-matrix", "id": "m", "tactic_refs": 5}]}])
def test_malformed_bundles_are_content_errors(tmp_path: Path, bundle: Any) -> None:
    with pytest.raises(ContentError):
        _build(json.dumps(bundle).encode(), "h", "bad.json", CatalogCache(tmp_path))
