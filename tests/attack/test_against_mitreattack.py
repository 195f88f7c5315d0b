"""The catalog agrees with mitreattack-python's MitreAttackData on the same v18.1 bundle."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from dcoflow.models.attack import Catalog


def _attack_id(obj: Any) -> str:
    return next(r["external_id"] for r in obj["external_references"] if r["source_name"] == "mitre-attack")


@pytest.fixture(scope="module")
def mad(enterprise_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """MitreAttackData over the same bundle (slow: ~5 s, built once for the module)."""
    from mitreattack.stix20 import MitreAttackData

    plain = tmp_path_factory.mktemp("mitreattack") / "enterprise-attack.json"
    plain.write_bytes(gzip.decompress(enterprise_bundle.read_bytes()))
    return MitreAttackData(str(plain))


def test_group_techniques_direct_and_with_campaigns(mad: Any, catalog: Catalog) -> None:
    apt29 = mad.get_object_by_attack_id("G0016", "intrusion-set")
    direct = {_attack_id(e["object"]) for e in mad.get_related("intrusion-set", "uses", "attack-pattern")[apt29.id]}
    with_campaigns = {_attack_id(e["object"]) for e in mad.get_techniques_used_by_group(apt29.id)}
    assert (len(direct), len(with_campaigns)) == (66, 119)
    assert set(catalog.group_techniques("G0016", via=("direct",))) == direct
    assert set(catalog.group_techniques("G0016", via=("direct", "campaigns"))) == with_campaigns


def test_every_group_direct_techniques(mad: Any, catalog: Catalog) -> None:
    theirs = mad.get_related("intrusion-set", "uses", "attack-pattern")
    for group in catalog.groups:
        expected = {_attack_id(e["object"]) for e in theirs.get(group.stix_id, [])}
        assert set(group.technique_ids) == expected, group.attack_id


def test_group_software_techniques(mad: Any, catalog: Catalog) -> None:
    apt29 = mad.get_object_by_attack_id("G0016", "intrusion-set")
    # this call returns STIX objects and does not drop revoked or deprecated ones; the catalog does
    via_software = {_attack_id(t) for t in mad.get_techniques_used_by_group_software(apt29.id)
                    if not t.get("revoked") and not t.get("x_mitre_deprecated")}
    ours = {t for t, via in catalog.group_techniques("G0016", via=("software",)).items()}
    assert ours == via_software


def test_mitigations_of_powershell(mad: Any, catalog: Catalog) -> None:
    ps = mad.get_object_by_attack_id("T1059.001", "attack-pattern")
    theirs = sorted(_attack_id(e["object"]) for e in mad.get_mitigations_mitigating_technique(ps.id))
    assert theirs == ["M1026", "M1038", "M1042", "M1045", "M1049"]
    assert catalog.technique("T1059.001").mitigation_ids == theirs


def test_detection_chain_of_powershell(mad: Any, catalog: Catalog) -> None:
    ps = mad.get_object_by_attack_id("T1059.001", "attack-pattern")
    strategies = [e["object"] for e in mad.get_detection_strategies_detecting_technique(ps.id)]
    assert [_attack_id(s) for s in strategies] == ["DET0455"]
    analytics = mad.get_analytics_by_detection_strategy(strategies[0]["id"])
    assert [_attack_id(a) for a in analytics] == ["AN1252"]
    # mitreattack-python's get_datacomponents_detecting_technique follows the pre-v18 `detects` relationships
    # of data components, which v18 no longer has: follow the analytics' log source references instead.
    components = {_attack_id(mad.get_object_by_stix_id(ref["x_mitre_data_component_ref"]))
                  for a in analytics for ref in a["x_mitre_log_source_references"]}
    assert components
    tech = catalog.technique("T1059.001")
    assert (tech.detection_strategy_ids, tech.analytic_ids) == (["DET0455"], ["AN1252"])
    assert set(tech.data_component_ids) == components


def test_subtechnique_parents(mad: Any, catalog: Catalog) -> None:
    subs = [t for t in catalog.techniques if t.is_subtechnique]
    assert len(subs) > 400
    for sub in subs:
        parents = mad.get_parent_technique_of_subtechnique(sub.stix_id)
        assert [_attack_id(p["object"]) for p in parents] == [sub.parent_id], sub.attack_id
