"""Navigator layers: every builder's output loads in mitreattack-python's Layer and round-trips."""

from __future__ import annotations

from typing import Any

import pytest
from mitreattack.navlayers import Layer

from dcoflow.core.errors import ContentError
from dcoflow.models.navigator import (
    ScoredTechnique,
    attack_major,
    compare_layer,
    coverage_layer,
    gap_layer,
    import_layer,
    interpolate,
    planned_layer,
    threat_layer,
)

TACTICS = {"T1059.001": ["execution"], "T1003.001": ["credential-access"], "T1055": ["defense-evasion",
                                                                                     "privilege-escalation"]}


def roundtrip(layer: dict[str, Any]) -> dict[str, Any]:
    nav = Layer()
    nav.from_dict(layer)
    out = nav.to_dict()
    assert out is not None, "mitreattack-python refused the layer"
    return dict(out)


def test_planned_layer_roundtrips_and_expands_parents() -> None:
    layer = planned_layer("DCO plan", "18.1", ["T1059.001", "T1003.001", "T1059.001"], "plan",
                          tactics=TACTICS)
    assert roundtrip(layer) == layer
    assert layer["versions"] == {"attack": "18", "navigator": "5.1.0", "layer": "4.5"}
    assert layer["domain"] == "enterprise-attack"
    ids = [t["techniqueID"] for t in layer["techniques"]]
    assert ids.count("T1059.001") == 1  # deduplicated
    parents = {t["techniqueID"]: t for t in layer["techniques"] if "." not in t["techniqueID"]}
    assert set(parents) == {"T1059", "T1003"} and all(p["showSubtechniques"] for p in parents.values())


def test_coverage_gap_threat_compare_layers_roundtrip() -> None:
    scores = [ScoredTechnique("T1059.001", 3, 4, ("emulation-alerted by EDR",) * 10, 0.5, 2),
              ScoredTechnique("T1055", 0, -1, (), 2.0, 3)]
    cov = coverage_layer("cov", "18.1", scores, tactics=TACTICS)
    assert roundtrip(cov) == cov
    t1055 = [t for t in cov["techniques"] if t["techniqueID"] == "T1055"]
    assert [t["tactic"] for t in t1055] == ["defense-evasion", "privilege-escalation"]
    first = next(t for t in cov["techniques"] if t["techniqueID"] == "T1059.001")
    assert first["score"] == 4 and first["metadata"][-1]["value"] == "… 2 more"
    gaps = gap_layer("gaps", "18.1", scores)
    assert roundtrip(gaps) == gaps
    assert {t["techniqueID"]: t["score"] for t in gaps["techniques"] if "score" in t} == {"T1059.001": 25, "T1055": 100}
    threat = threat_layer("threat", "18.1", {"T1055": ["APT29", "C0024"]})
    assert roundtrip(threat) == threat and threat["techniques"][0]["score"] == 2
    cmp = compare_layer("cmp", "18.1", {"T1055": -1, "T1003.001": 3}, {"T1055": 4, "T1003.001": 1})
    assert roundtrip(cmp) == cmp
    assert {t["techniqueID"]: t["score"] for t in cmp["techniques"] if "score" in t} == {"T1003.001": -2, "T1055": 5}


def test_attack_major_and_colors() -> None:
    assert attack_major("18.1") == "18"
    with pytest.raises(ContentError):
        attack_major("latest")
    assert interpolate(["#000000", "#ffffff"], 0, 10, 5) == "#808080"
    assert interpolate(["#000000", "#ffffff"], 0, 10, 99) == "#ffffff"


def test_import_layer_from_older_release_reports_moved_and_vanished(catalog_fixture: Any) -> None:
    old = {
        "name": "old coverage", "domain": "enterprise-attack",
        "versions": {"attack": "8", "navigator": "4.0", "layer": "4.0"},
        "techniques": [
            {"techniqueID": "T1086", "score": 3, "tactic": "execution"},  # PowerShell, revoked → T1059.001
            {"techniqueID": "T1059.001", "score": 1, "tactic": "execution"},
            {"techniqueID": "T9999", "score": 5},
            {"techniqueID": "T1003", "score": 2},
        ],
    }
    result = import_layer(old, catalog_fixture, catalog_fixture.version)
    assert result.from_version == "8"
    assert result.moved == [("T1086", "T1059.001", result.moved[0][2])] and "revoked" in result.moved[0][2]
    assert [v[0] for v in result.vanished] == ["T9999"]
    kept = {t["techniqueID"]: t for t in result.layer["techniques"]}
    assert set(kept) == {"T1059.001", "T1003"}
    assert kept["T1059.001"]["score"] == 3  # the higher of the two entries that met
    assert result.layer["versions"]["attack"] == "18"
    assert roundtrip(result.layer)["techniques"]
    assert "1 moved, 1 vanished" in result.summary()


def test_import_layer_rejects_non_layers(catalog_fixture: Any) -> None:
    with pytest.raises(ContentError, match="techniques"):
        import_layer({"name": "x"}, catalog_fixture, "18.1", source="x.json")
    with pytest.raises(ContentError, match="entry 0"):
        import_layer({"techniques": [{"score": 1}]}, catalog_fixture, "18.1", source="x.json")
