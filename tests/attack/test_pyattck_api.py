"""The pyattck-style facade uses pyattck 7's names, and what it derives from the catalog equals what the
ATT&CK v18.1 bundle itself says (pyattck 7 reads those attributes straight from the STIX objects)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from dcoflow.models.attack import Catalog
from dcoflow.models.attack.pyattck_api import Attck, AttckTechnique, ExternalReference, KillChainPhase


@pytest.fixture(scope="module")
def bundle_objects(shared_dir: Path) -> list[dict[str, Any]]:
    data = orjson.loads(gzip.decompress((shared_dir / "attack" / "enterprise-attack-18.1.json.gz").read_bytes()))
    return list(data["objects"])


@pytest.fixture(scope="module")
def full(catalog: Catalog, bundle_objects: list[dict[str, Any]]) -> Attck:
    return Attck(catalog, stix_objects=bundle_objects)


def _by_tid(techniques: list[AttckTechnique], tid: str) -> AttckTechnique:
    return next(t for t in techniques if t.technique_id == tid)


def test_ids_follow_pyattck_7(catalog: Catalog) -> None:
    ent = Attck(catalog).enterprise
    ps = _by_tid(ent.techniques, "T1059.001")
    assert ps.id == ps.stix == catalog.technique("T1059.001").stix_id and ps.id.startswith("attack-pattern--")
    assert ps.technique_id == ps.external_id == "T1059.001" and ps.type == "attack-pattern"
    assert ps.kill_chain_phases == [KillChainPhase("mitre-attack", "execution")]
    assert ps.x_mitre_platforms == ["Windows"] and ps.x_mitre_is_subtechnique
    assert ps.x_mitre_domains == ["enterprise-attack"] and ps.x_mitre_deprecated is False and not ps.revoked
    assert ps.external_references == [ExternalReference("mitre-attack", "https://attack.mitre.org/techniques/T1059/001",
                                                        "T1059.001")]
    assert ps.modified is not None and ps.modified.year >= 2017
    mitigation = ent.mitigations[0]
    assert mitigation.mitigation_id.startswith("M") and mitigation.id.startswith("course-of-action--")
    actor = next(a for a in ent.actors if a.external_id == "G0016")
    assert actor.id.startswith("intrusion-set--") and "APT29" in actor.aliases
    assert next(t for t in ent.tactics if t.x_mitre_shortname == "execution").type == "x-mitre-tactic"


def test_relations(catalog: Catalog) -> None:
    ent = Attck(catalog).enterprise
    actor = next(a for a in ent.actors if a.external_id == "G0016")
    assert len(actor.techniques) == 66 and actor.malwares and actor.tools
    assert ({m.external_id for m in actor.malwares} | {t.external_id for t in actor.tools}
            == set(catalog.group("G0016").software_ids))
    cmd = _by_tid(ent.techniques, "T1059")
    # pyattck 7: `techniques` are the techniques related by subtechnique-of, in both directions.
    assert "T1059.001" in {t.technique_id for t in cmd.techniques} and cmd.techniques == cmd.subtechniques
    ps = _by_tid(cmd.subtechniques, "T1059.001")
    assert [t.technique_id for t in ps.techniques] == ["T1059"] and ps.subtechniques == []
    assert [t.x_mitre_shortname for t in cmd.tactics] == ["execution"]
    assert "G0016" in {a.external_id for a in ps.actors}
    assert {m.mitigation_id for m in ps.mitigations} == {"M1026", "M1038", "M1042", "M1045", "M1049"}
    assert {d.external_id for d in ps.data_components} == {"DC0016", "DC0032", "DC0034", "DC0064"}
    assert all(ps in d.techniques for d in ps.data_components)
    execution = next(t for t in ent.tactics if t.x_mitre_shortname == "execution")
    assert "T1059.001" in {t.technique_id for t in execution.techniques}
    assert len(ent.malwares) + len(ent.tools) == len(catalog.softwares)
    assert len(ent.mitigations) == len(catalog.mitigations) and ent.campaigns
    assert len(ent.data_components) == len(catalog.data_components) > 0
    with pytest.raises(AttributeError, match="no mobile catalog"):
        _ = Attck(catalog).mobile


def test_derived_attributes_equal_the_bundle(full: Attck, bundle_objects: list[dict[str, Any]]) -> None:
    """What the facade computes from the index is what pyattck 7 would read from each STIX object."""
    raw = {o["id"]: o for o in bundle_objects}
    techniques = full.enterprise.techniques
    assert len(techniques) > 600
    for t in techniques:
        o = raw[t.id]
        ref = next(r for r in o["external_references"] if r.get("source_name") == "mitre-attack")
        assert t.technique_id == ref["external_id"]
        assert sorted((p.kill_chain_name, p.phase_name) for p in t.kill_chain_phases) == sorted(
            (p["kill_chain_name"], p["phase_name"]) for p in o["kill_chain_phases"]), t.technique_id
        assert t.x_mitre_platforms == o.get("x_mitre_platforms", [])
        assert t.x_mitre_is_subtechnique == o.get("x_mitre_is_subtechnique", False)
        assert t.x_mitre_version == o.get("x_mitre_version", "")
        assert t.type == o["type"] and t.name == o["name"]
    for a in full.enterprise.actors:
        assert a.aliases == raw[a.id].get("aliases", [])
    for s in full.enterprise.malwares + full.enterprise.tools:
        assert s.type == raw[s.id]["type"] and s.x_mitre_aliases == raw[s.id].get("x_mitre_aliases", [])


def test_whole_stix_objects_when_the_bundle_is_given(catalog: Catalog, full: Attck) -> None:
    ps = _by_tid(full.enterprise.techniques, "T1059.001")
    assert len(ps.external_references) > 1  # the citations too, not only the ATT&CK reference
    assert ps.external_references[0].external_id == "T1059.001"
    assert ps.created is not None and ps.created < ps.modified  # type: ignore[operator]
    assert ps.x_mitre_attack_spec_version and ps.object_marking_refs
    assert ps.x_mitre_impact_type is None  # optional property this object does not carry
    lean = _by_tid(Attck(catalog).enterprise.techniques, "T1059.001")
    with pytest.raises(AttributeError, match="stix_objects"):
        _ = lean.x_mitre_attack_spec_version
    with pytest.raises(AttributeError, match="stix_objects"):
        _ = lean.created


def test_relationships_and_data_sources_need_the_bundle(catalog: Catalog, full: Attck,
                                                       bundle_objects: list[dict[str, Any]]) -> None:
    with pytest.raises(AttributeError, match="stix_objects"):
        _ = Attck(catalog).enterprise.relationships
    rels = full.enterprise.relationships
    assert rels and all(r.relationship_type == "uses" for r in rels)
    apt29 = catalog.group("G0016")
    direct = {r.target_ref for r in rels if r.source_ref == apt29.stix_id and r.target_ref.startswith("attack-")}
    assert direct == {t.stix_id for t in apt29.techniques}
    sources = full.enterprise.data_sources
    assert len(sources) == sum(1 for o in bundle_objects if o["type"] == "x-mitre-data-source")
    assert all(s.x_mitre_deprecated or s.revoked for s in sources)  # ATT&CK v18 retired data sources
    assert Attck(catalog).enterprise.data_sources == []


def test_controls_from_a_mapping_bundle(catalog: Catalog) -> None:
    """Controls come from a control-framework mapping bundle (course-of-action + mitigates), as pyattck's
    NIST 800-53 data; the objects here follow that shape."""
    ps = catalog.technique("T1059.001")
    control = {"type": "course-of-action", "id": "course-of-action--3d2c2a0e-1b1c-4f2e-9a53-4a6f0b8f1a11",
               "name": "Least Functionality", "x_mitre_family": "Configuration Management",
               "external_references": [{"source_name": "NIST 800-53 Revision 5", "external_id": "CM-7"}]}
    link = {"type": "relationship", "id": "relationship--6a0f4c0e-0c1d-4e59-8d8e-0f0b6c9a7b21",
            "relationship_type": "mitigates", "source_ref": control["id"], "target_ref": ps.stix_id}
    ent = Attck(catalog, controls=[control, link]).enterprise
    assert [c.external_references[0].external_id for c in ent.controls] == ["CM-7"]
    assert ent.controls[0].x_mitre_family == "Configuration Management"
    assert [t.technique_id for t in ent.controls[0].techniques] == ["T1059.001"]
    tech = _by_tid(ent.techniques, "T1059.001")
    assert [c.name for c in tech.controls] == ["Least Functionality"]
    assert Attck(catalog).enterprise.controls == []


def test_load_full_stix_reads_the_bundle_file(settings: Any, shared_dir: Path) -> None:
    from dcoflow.connectors.attack import load_attck

    attck = load_attck(str(shared_dir / "attack" / "enterprise-attack-18.1.json.gz"), full_stix=True)
    assert _by_tid(attck.enterprise.techniques, "T1059.001").x_mitre_attack_spec_version
