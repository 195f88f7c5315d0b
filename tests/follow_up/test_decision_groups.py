"""How a board's decisions are grouped: gaps by authority, treatment, tactic and owner; confirmed findings
apart from gaps and one decision per technique (two incidents of the same activity are one response)."""

from __future__ import annotations

from dcoflow.models.followup import Treatment
from dcoflow.models.meeting import DecisionCase, group_decisions

LSASS = "OS Credential Dumping: LSASS Memory"


def _case(n: int, *, finding: bool, title: str, tactic: str = "Credential Access", score: int = 20) -> DecisionCase:
    return DecisionCase(f"item{n}", f"risk{n}", score, "BCISOA", Treatment.MITIGATE, finding, tactic, "OCIO", title)


def test_findings_on_one_technique_are_one_decision_apart_from_the_gaps() -> None:
    cases = [_case(1, finding=True, title=LSASS, score=25), _case(2, finding=True, title=LSASS, score=25),
             _case(3, finding=True, title="OS Credential Dumping: DCSync"),
             _case(4, finding=False, title=LSASS), _case(5, finding=False, title="Kerberoasting")]
    groups = group_decisions("mtg", cases)
    titles = [g.title("CORP-LAN", None) for g in groups]
    assert titles[0] == f"Respond to confirmed hostile activity: {LSASS} (2 confirmed findings) (owner OCIO)"
    assert titles[1] == "Respond to confirmed hostile activity: OS Credential Dumping: DCSync (owner OCIO)"
    assert titles[2] == "Mitigate 2 detection gaps in Credential Access on CORP-LAN, owner OCIO"
    assert len(titles) == len(set(titles)) == 3
    assert sorted(c.risk_id for g in groups for c in g.cases) == [f"risk{i}" for i in range(1, 6)]  # none lost
