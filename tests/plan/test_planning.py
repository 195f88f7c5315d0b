"""Planning on the real catalog and content: technique selection with reasons, emulation steps
filtered by platform, hunt hypotheses with data components and Sigma rules, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dcoflow.connectors.content.atomics import load_atomics
from dcoflow.connectors.content.ctid import load_ctid_plan
from dcoflow.connectors.content.sigma_rules import load_rule_index
from dcoflow.core.errors import ValidationError
from dcoflow.models.hunting import HuntSelection
from dcoflow.models.operation import DcoSpec
from dcoflow.models.plan import ProcedureSource
from dcoflow.models.planning import emulation_steps, hunt_hypotheses, select_techniques, summarise


def spec(**profile: Any) -> DcoSpec:
    return DcoSpec.model_validate({
        "name": "Test DCO", "objective": "test", "type": "purple-team",
        "scope": {"platforms": ["windows"]}, "threat_profile": profile,
    })


@pytest.fixture(scope="module")
def atomics(shared_dir: Path) -> Any:
    return load_atomics(shared_dir / "atomics" / "atomics")


@pytest.fixture(scope="module")
def rules(shared_dir: Path) -> Any:
    return load_rule_index([shared_dir / "sigma" / "rules", shared_dir / "sigma" / "rules-threat-hunting"])


def test_group_selection_counts_what_it_says(catalog: Any) -> None:
    direct = select_techniques(spec(groups=["G0016"], via=["direct"]), catalog)
    with_campaigns = select_techniques(spec(groups=["APT29"], via=["direct", "campaigns"]), catalog)
    assert len(direct.techniques) == 66
    assert len(with_campaigns.techniques) == 119
    assert all(any("G0016" in r for r in t.reasons) for t in with_campaigns.techniques.values())
    # a technique only used through a campaign says so
    via_campaign = [t for t in with_campaigns.techniques.values() if "direct" not in " ".join(t.reasons)]
    assert via_campaign and all("campaigns" in " ".join(t.reasons) for t in via_campaign)


def test_unknown_group_names_the_field_and_suggests(catalog: Any) -> None:
    with pytest.raises(ValidationError) as err:
        select_techniques(spec(groups=["FIN7", "APT-29"]), catalog)
    assert err.value.field == "threat_profile.groups[1]"
    assert "APT29" in err.value.suggestions


def test_ids_from_other_releases_are_kept_and_reported(catalog: Any) -> None:
    sel = select_techniques(spec(techniques=["T1685", "T1086", "T1059.001", "T1699"]), catalog)
    # v19's T1685 maps onto v18.1's T1562.001 (models/attack/newer_ids.py); an id no release has stays
    assert "T1562.001" in sel.techniques and "T1685" not in sel.techniques
    assert "T1699" in sel.techniques and not sel.techniques["T1699"].known
    assert "T1059.001" in sel.techniques and "T1086" not in sel.techniques  # revoked → replacement
    text = " ".join(sel.warnings)
    assert "T1685" in text and "T1086" in text and "T1059.001" in text and "T1699" in text


def test_content_tagged_with_newer_ids_counts_for_the_technique(catalog: Any, rules: Any, atomics: Any) -> None:
    """SigmaHQ tags T1562.001's rules T1685 and the atomics file its tests under T1685 (ATT&CK v19)."""
    sel = select_techniques(spec(techniques=["T1562.001", "T1070.001"]), catalog)
    hyps = {h.technique_id: h for h in hunt_hypotheses("d", sel, catalog, rules)}
    tagged = {r.rule_id for r in rules.rules if "T1685" in r.technique_ids}
    assert tagged and tagged <= {r["rule_id"] for r in hyps["T1562.001"].sigma_rules}
    # T1685.005 (Clear Windows Event Logs) belongs to T1070.001, not to T1562.001
    clear = {r.rule_id for r in rules.rules if "T1685.005" in r.technique_ids}
    assert clear and clear <= {r["rule_id"] for r in hyps["T1070.001"].sigma_rules}
    assert not clear & {r["rule_id"] for r in hyps["T1562.001"].sigma_rules} - tagged
    steps = {s.technique_id: s for s in emulation_steps("d", spec(techniques=["T1562.001"]), sel, catalog, atomics)}
    assert steps["T1562.001"].source == ProcedureSource.ATOMIC
    assert atomics.get(steps["T1562.001"].procedure_ref).technique_id == "T1685"
    assert summarise(sel, list(steps.values()), list(hyps.values()))["without_hunt_content"] == []
    # an ad-hoc hunt by technique (`dco hunt --technique T1562.001`) selects the same rules
    chosen = {r.rule_id for r in rules.select(HuntSelection(techniques=["T1562.001"]))}
    assert tagged <= chosen and not (clear - tagged) & chosen


def test_emulation_steps_follow_kill_chain_and_scope(catalog: Any, atomics: Any) -> None:
    s = spec(groups=["APT29"])
    sel = select_techniques(s, catalog)
    steps = emulation_steps("d1", s, sel, catalog, atomics)
    ranks = [catalog.tactic_rank(st.tactic) for st in steps]
    assert ranks == sorted(ranks)
    atomic_steps = [st for st in steps if st.source == ProcedureSource.ATOMIC]
    assert atomic_steps, "APT29 techniques have windows atomics"
    for st in atomic_steps:
        assert "windows" in [p.lower() for p in atomics.get(st.procedure_ref).platforms]
    # deterministic ids: planning twice gives the same steps
    again = emulation_steps("d1", s, select_techniques(s, catalog), catalog, atomics)
    assert [x.id for x in again] == [x.id for x in steps]


def test_hunt_hypotheses_carry_detection_chain_and_rules(catalog: Any, rules: Any) -> None:
    s = spec(techniques=["T1003.001", "T1059.001"])
    sel = select_techniques(s, catalog)
    hyps = {h.technique_id: h for h in hunt_hypotheses("d1", sel, catalog, rules)}
    lsass = hyps["T1003.001"]
    assert lsass.sigma_rules and all(r["rule_id"] for r in lsass.sigma_rules)
    assert "windows/process_access" in lsass.telemetry or any("windows" in t for t in lsass.telemetry)
    assert "AN1252" in hyps["T1059.001"].analytics
    assert "Process Creation" in hyps["T1059.001"].data_components
    summary = summarise(sel, [], list(hyps.values()))
    assert summary["techniques"] == 2 and summary["without_hunt_content"] == []


def test_ctid_plan_from_old_release(catalog: Any, atomics: Any, shared_dir: Path) -> None:
    plan = load_ctid_plan(shared_dir / "emulation-library" / "apt29" / "Emulation_Plan" / "yaml" / "APT29.yaml")
    s = spec(emulation_plan="apt29/Emulation_Plan/yaml/APT29.yaml")
    sel = select_techniques(s, catalog, plan)
    steps = emulation_steps("d1", s, sel, catalog, atomics, plan)
    assert len(steps) == len(plan.steps)
    assert [st.order for st in steps] == list(range(1, len(steps) + 1))
    assert all(st.source == ProcedureSource.CTID for st in steps)
    assert steps[1].depends_on == [steps[0].id]
    assert any("written for ATT&CK 8.1" in w for w in sel.warnings)


def test_ctid_plan_with_revoked_and_unknown_ids(catalog: Any, atomics: Any, shared_dir: Path, tmp_path: Path) -> None:
    """An old plan naming a since-revoked id (T1086) and an id no release knows: kept, reported, resolved."""
    text = (shared_dir / "emulation-library" / "fin7" / "Emulation_Plan" / "yaml" / "Fin7.yaml").read_text()
    first = load_ctid_plan(shared_dir / "emulation-library" / "fin7" / "Emulation_Plan" / "yaml" / "Fin7.yaml")
    old_ids = [first.steps[0].technique_id, first.steps[1].technique_id]
    text = text.replace(f"attack_id: {old_ids[0]}", "attack_id: T1086", 1)
    text = text.replace(f"attack_id: {old_ids[1]}", "attack_id: T1999", 1)
    path = tmp_path / "old-plan.yaml"
    path.write_text(text)
    plan = load_ctid_plan(path)
    s = spec(emulation_plan=str(path))
    sel = select_techniques(s, catalog, plan)
    steps = emulation_steps("d1", s, sel, catalog, atomics, plan)
    assert len(steps) == len(plan.steps)  # nothing dropped
    assert steps[0].technique_id == "T1059.001"  # revoked T1086 → its replacement
    assert steps[1].technique_id == "T1999" and not sel.techniques["T1999"].known
    joined = " ".join(sel.warnings)
    assert "T1086" in joined and "T1999" in joined


def test_ctid_step_prefers_an_allowed_executor_and_keeps_its_cleanup() -> None:
    """The planning flow and `import_ctid_plan` choose a CTID step's command by the same rule."""
    from dcoflow.models.procedures import CtidStep

    step = CtidStep(
        id="s1", name="Dump", description="", tactic="credential-access", technique_id="T1003.001",
        technique_name="LSASS Memory", procedure_step="1.A",
        platforms={"windows": {"psh": "Invoke-Dump", "cmd": "dump.exe"}, "linux": {"sh": "dump.sh"}},
        input_arguments={}, cleanup={"windows": {"cmd": "del dump.out"}},
    )
    assert step.choose(["windows"], ["cmd"]) == ("windows", "cmd", "dump.exe", "del dump.out")
    assert step.choose(["windows"], ["manual"]) == ("windows", "psh", "Invoke-Dump", None)  # none allowed: first
    assert step.choose(["linux", "windows"], ["sh"]) == ("linux", "sh", "dump.sh", None)
    assert step.choose(["macos"], ["sh"]) == (None, None, None, None)
