"""Catalog contents and queries on the real ATT&CK v18.1 enterprise bundle."""

from __future__ import annotations

import pickle

import pytest

from dcoflow.core.errors import NotFoundError, ValidationError
from dcoflow.models.attack import Catalog, Kind, UnknownAttackIdWarning


def test_release_identity(catalog: Catalog) -> None:
    assert (catalog.domain, catalog.version, catalog.name) == ("enterprise", "18.1", "Enterprise ATT&CK")
    assert len(catalog.content_hash) == 64


def test_tactics_in_kill_chain_order(catalog: Catalog) -> None:
    names = [t.shortname for t in catalog.tactics]
    assert names[:3] == ["reconnaissance", "resource-development", "initial-access"]
    assert names[-1] == "impact" and len(names) == 14
    assert [catalog.tactic_rank(s) for s in names] == list(range(14))
    assert catalog.tactic_rank("stealth") == 14  # another release's tactic sorts last
    assert catalog.tactics[0].attack_id == "TA0043"


def test_technique_fields(catalog: Catalog) -> None:
    t = catalog.technique("T1059.001")
    assert (t.name, t.tactics, t.platforms) == ("PowerShell", ["execution"], ["Windows"])
    assert t.is_subtechnique and t.parent_id == "T1059" and t.parent is not None
    assert t.parent.name == "Command and Scripting Interpreter"
    assert "T1059.001" in t.parent.subtechnique_ids
    assert t.url == "https://attack.mitre.org/techniques/T1059/001"
    assert "PowerShell" in t.description
    assert "G0016" in t.group_ids and "APT29" in {g.name for g in t.groups}
    multi = catalog.technique("T1078")  # Valid Accounts: four tactics, in kill-chain order
    assert multi.tactics == sorted(multi.tactics, key=catalog.tactic_rank) and len(multi.tactics) == 4


def test_technique_lookup_forms_and_not_found(catalog: Catalog) -> None:
    assert catalog.technique("attack.t1059.001").attack_id == "T1059.001"
    assert catalog.get_technique("T9999") is None
    with pytest.raises(NotFoundError) as err:
        catalog.technique("T9999")
    assert "T9999" in str(err.value)


def test_current_listings_exclude_revoked_and_deprecated(catalog: Catalog) -> None:
    ids = {t.attack_id for t in catalog.techniques}
    assert "T1086" not in ids and "T1059.001" in ids
    assert all(t.is_current for t in catalog.techniques)
    assert len(catalog.techniques) == len(ids) > 600
    revoked = catalog.technique("T1086")
    assert revoked.revoked and revoked.revoked_by == "T1059.001"


def test_group_lookup_by_alias_and_suggestions(catalog: Catalog) -> None:
    g = catalog.group("cozy bear")
    assert (g.attack_id, g.name) == ("G0016", "APT29")
    assert catalog.group("G0016") is g and catalog.group("apt29") is g
    with pytest.raises(NotFoundError) as err:
        catalog.group("APT 29")
    assert "APT29 (G0016)" in (err.value.hint or "")
    assert "APT29" in catalog.suggest_groups("APT-29")


def test_group_techniques_states_what_it_counts(catalog: Catalog) -> None:
    direct = catalog.group_techniques("G0016", via=("direct",))
    both = catalog.group_techniques("G0016", via=("direct", "campaigns"))
    everything = catalog.group_techniques("APT29")
    assert len(direct) == 66 and len(both) == 119
    assert set(direct) == set(catalog.group("G0016").technique_ids)
    assert set(direct) < set(both) < set(everything)
    only_campaigns = {t for t, via in both.items() if via == frozenset({"campaigns"})}
    assert len(only_campaigns) == 119 - 66
    assert any("software" in via for via in everything.values())
    with pytest.raises(ValidationError):
        catalog.group_techniques("G0016", via=("rumour",))  # type: ignore[arg-type]


def test_campaign_and_software_relations(catalog: Catalog) -> None:
    sw = catalog.group("G0016").softwares
    assert sw and all("G0016" in s.group_ids for s in sw)
    c = catalog.campaign("SolarWinds Compromise")
    assert c.group_ids == ["G0016"] and c.attack_id in catalog.group("G0016").campaign_ids
    assert {t.attack_id for t in catalog.campaign_techniques(c.attack_id)} == set(c.technique_ids)
    mimikatz = catalog.software("mimikatz")
    assert mimikatz.software_type == "tool"
    assert "T1003.001" in {t.attack_id for t in catalog.techniques_for_software("S0002")}


def test_mitigations_and_detection_chain(catalog: Catalog) -> None:
    t = catalog.technique("T1059.001")
    assert t.mitigation_ids == ["M1026", "M1038", "M1042", "M1045", "M1049"]
    assert t.detection_strategy_ids == ["DET0455"] and t.analytic_ids == ["AN1252"]
    det = catalog.detection_strategy("DET0455")
    assert det.technique_ids == ["T1059.001"] and det.analytic_ids == ["AN1252"]
    an = catalog.analytic("AN1252")
    assert an.detection_strategy_ids == ["DET0455"] and an.platforms == ["Windows"]
    assert set(an.data_component_ids) == set(t.data_component_ids)
    assert {ls.data_component_id for ls in an.log_sources} >= set(an.data_component_ids)
    for dc in t.data_components:
        assert "AN1252" in dc.analytic_ids and "T1059.001" in dc.technique_ids
    assert "T1059.001" in catalog.mitigation("M1042").technique_ids


def test_resolve_identifiers_of_other_releases(catalog: Catalog) -> None:
    r = catalog.resolve("T1086")  # ATT&CK 7-era PowerShell
    assert (r.status, r.attack_id) == ("revoked", "T1059.001") and "T1059.001" in r.note
    assert catalog.resolve("t1059.001").status == "current"
    deprecated = next(t for t in catalog.all_objects(Kind.TECHNIQUE) if t.deprecated and not t.revoked)
    d = catalog.resolve(deprecated.attack_id)
    assert (d.status, d.attack_id) == ("deprecated", deprecated.attack_id)
    n = catalog.resolve("T1685")  # a v19 id: mapped through the documented table, no warning
    assert (n.status, n.attack_id, n.requested) == ("newer-release", "T1562.001", "T1685")
    with pytest.warns(UnknownAttackIdWarning, match="T1699"):
        u = catalog.resolve("T1699")  # an id no release we know of has
    assert (u.status, u.attack_id, u.requested) == ("unknown", None, "T1699")
    with pytest.warns(UnknownAttackIdWarning, match="parent T1059"):
        assert catalog.resolve("T1059.999").status == "unknown"
    with pytest.warns(UnknownAttackIdWarning, match="not an ATT&CK technique id"):
        assert catalog.resolve("powershell").status == "unknown"


def test_resolve_tactics(catalog: Catalog) -> None:
    assert catalog.resolve_tactic("attack.defense_evasion") is not None
    assert catalog.resolve_tactic("Command and Control").shortname == "command-and-control"  # type: ignore[union-attr]
    assert catalog.resolve_tactic("TA0002").shortname == "execution"  # type: ignore[union-attr]
    for v19 in ("stealth", "defense-impairment"):
        with pytest.warns(UnknownAttackIdWarning, match=v19):
            assert catalog.resolve_tactic(v19) is None


def test_search_ranks_exact_then_prefix_then_anywhere(catalog: Catalog) -> None:
    hits = catalog.search("powershell")
    assert hits[0].attack_id == "T1059.001"
    assert [h.type for h in catalog.search("G0016")] == [Kind.GROUP]
    assert all(h.type is Kind.SOFTWARE for h in catalog.search("mimi", types=["software"]))
    assert len(catalog.search("a", limit=7)) == 7
    assert catalog.search("   ") == []
    assert catalog.search("cozy")[0].attack_id == "G0016"  # aliases are searched


def test_pickle_round_trip_keeps_relations(catalog: Catalog) -> None:
    copy = pickle.loads(pickle.dumps(catalog, protocol=5))
    copy.set_description_loader(lambda: dict(catalog.descriptions))
    assert copy.counts() == catalog.counts()
    assert copy.group_techniques("G0016") == catalog.group_techniques("G0016")
    assert copy.technique("T1059.001").parent.catalog is copy  # type: ignore[union-attr]
    assert copy.technique("T1059.001").description == catalog.technique("T1059.001").description
