"""ATT&CK ids of newer releases in the shared content (SigmaHQ, Atomic Red Team use v19 ids) map onto
the loaded v18.1 catalog through the documented table in models/attack/newer_ids.py."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import yaml

from dcoflow.models.attack import Catalog, UnknownAttackIdWarning
from dcoflow.models.attack.newer_ids import NEWER_IDS, newer_ids_for

TAG = re.compile(r"attack\.(t\d{4}(?:\.\d{3})?)\b", re.IGNORECASE)


def _shared_ids(shared: Path) -> dict[str, set[str]]:
    """Every technique id the shared Sigma rules tag and the atomics file tests under, by where."""
    found: dict[str, set[str]] = {}
    for rule in (shared / "sigma").rglob("*.yml"):
        for tid in TAG.findall(rule.read_text(encoding="utf-8", errors="replace")):
            found.setdefault(tid.upper(), set()).add("sigma")
    for folder in (shared / "atomics" / "atomics").glob("T*"):
        if folder.is_dir():
            found.setdefault(folder.name.upper(), set()).add("atomics")
    return found


@pytest.fixture(scope="module")
def shared_ids(shared_dir: Path) -> dict[str, set[str]]:
    return _shared_ids(shared_dir)


def test_every_newer_id_in_the_shared_content_maps(catalog: Catalog, shared_ids: dict[str, set[str]]) -> None:
    foreign = sorted(t for t in shared_ids if catalog.get_technique(t) is None)
    assert "T1685" in foreign and len(foreign) >= 12  # the v19 ids the content uses today
    unmapped = [t for t in foreign if catalog.resolve(t, warn=False).status != "newer-release"]
    assert unmapped == [], f"ids in ../shared with no mapping row: {unmapped}"
    for tid in foreign:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnknownAttackIdWarning)  # mapped: no warning per use
            res = catalog.resolve(tid)
        tech = catalog.get_technique(res.attack_id or "")
        assert tech is not None and tech.is_current, tid
        assert NEWER_IDS[tid].source in res.note and tid in res.note


def test_table_rows_agree_with_the_loaded_release_and_the_atomics(catalog: Catalog, shared_dir: Path) -> None:
    for row in NEWER_IDS.values():
        target = catalog.get_technique(row.attack_id)
        assert target is not None and target.is_current, row
        assert catalog.get_technique(row.newer_id) is None, f"{row.newer_id} exists in v18.1: no mapping needed"
        if row.relation == "revoked-by":
            assert row.attack_id in row.source and row.newer_id in row.source
        atomic = shared_dir / "atomics" / "atomics" / row.newer_id / f"{row.newer_id}.yaml"
        if atomic.is_file():  # the atomics name each id: the row's name must be that id's name
            name = str(yaml.safe_load(atomic.read_text(encoding="utf-8"))["display_name"])
            assert name.rsplit(": ", maxsplit=1)[-1] == row.name, (row.newer_id, name)


def test_newer_ids_for_a_technique_and_its_parent() -> None:
    assert newer_ids_for("T1562.001") == ("T1685",)
    assert newer_ids_for("t1070.001") == ("T1685.005",)
    parent = newer_ids_for("T1562")
    assert {"T1685", "T1685.001", "T1686", "T1690"} <= set(parent) and "T1685.005" not in parent
    assert newer_ids_for("T1562", include_subtechniques=False) == ()
    assert newer_ids_for("T1059.001") == ()
