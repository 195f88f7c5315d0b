"""Fixtures of the ATT&CK catalog tests: the real v18.1 bundle, a small subset of it, a private cache."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from dcoflow.connectors.attack import clear_memo
from dcoflow.core.settings import Settings, get_settings


@pytest.fixture(scope="session")
def attack_dir(shared_dir: Path) -> Path:
    return shared_dir / "attack"


@pytest.fixture(scope="session")
def enterprise_bundle(attack_dir: Path) -> Path:
    return attack_dir / "enterprise-attack-18.1.json.gz"


@pytest.fixture(scope="session")
def enterprise_objects(enterprise_bundle: Path) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = orjson.loads(gzip.decompress(enterprise_bundle.read_bytes()))["objects"]
    return objects


@pytest.fixture(scope="session")
def small_objects(enterprise_objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An ATT&CK-like subset: the collection, matrix, tactics, APT29, its campaigns and techniques."""
    by_id = {o["id"]: o for o in enterprise_objects}
    apt29 = next(o for o in enterprise_objects if o["type"] == "intrusion-set" and o["name"] == "APT29")
    rels = [o for o in enterprise_objects if o["type"] == "relationship"]
    keep = {apt29["id"]}
    keep |= {r["source_ref"] for r in rels if r["relationship_type"] == "attributed-to"
             and r["target_ref"] == apt29["id"]}
    keep |= {r["target_ref"] for r in rels if r["source_ref"] in keep and r["relationship_type"] == "uses"
             and r["target_ref"].startswith("attack-pattern--")}
    # the parents of the sub-techniques, and PowerShell's predecessor T1086 (revoked-by)
    keep |= {r["target_ref"] for r in rels if r["source_ref"] in keep and r["relationship_type"] == "subtechnique-of"}
    keep |= {r["source_ref"] for r in rels if r["relationship_type"] == "revoked-by" and r["target_ref"] in keep
             and r["source_ref"].startswith("attack-pattern--")}
    keep |= {o["id"] for o in enterprise_objects
             if o["type"] in ("x-mitre-collection", "x-mitre-matrix", "x-mitre-tactic")}
    chosen = [by_id[i] for i in sorted(keep)]
    chosen += [r for r in rels if r["source_ref"] in keep and r["target_ref"] in keep]
    for o in chosen:  # a small collection must not claim the full contents list
        if o["type"] == "x-mitre-collection":
            chosen[chosen.index(o)] = {**o, "x_mitre_contents": []}
    return chosen


@pytest.fixture(scope="session")
def small_bundle_bytes(small_objects: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"type": "bundle", "id": "bundle--5f1c3d7e-0000-4000-8000-000000000001",
                         "objects": small_objects})


@pytest.fixture()
def attack_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_dir: Path) -> Iterator[Settings]:
    """Private cache, content folder = shared, nothing memoised, no retry back-off."""
    monkeypatch.setenv("DCO_CONTENT_DIR", str(shared_dir))
    monkeypatch.setenv("DCO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DCO_HTTP_BACKOFF_S", "0")
    monkeypatch.setenv("DCO_HTTP_RETRIES", "1")
    monkeypatch.delenv("DCO_ATTACK_SOURCE", raising=False)
    monkeypatch.delenv("DCO_ATTACK_DOMAIN", raising=False)
    get_settings.cache_clear()
    clear_memo()
    yield get_settings()
    clear_memo()
    get_settings.cache_clear()
