"""Briefs carry the stored numbers (read back independently here), the marking in header and footer,
the decisions needed; the executive brief names every technique it mentions."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from sqlmodel import select

from dcoflow.core.db import session_scope
from dcoflow.models.assessment import reaches
from dcoflow.models.attack import Catalog
from dcoflow.models.followup import is_overdue
from dcoflow.models.hunt_run import HuntRun
from dcoflow.models.repository.assessment import latest_scores
from dcoflow.models.repository.emulation import current_outcomes
from dcoflow.models.repository.followup import list_actions
from dcoflow.tasks.follow_up.risks import risks_needing_decision
from dcoflow.tasks.reporting.briefing import (
    executive_brief,
    gather_facts,
    key_risks,
    technical_brief,
    technique_name,
    write_briefs,
)

from .conftest import NOW, Built

BANNER = "TLP:AMBER — NATO UNCLASSIFIED — REL TO DCO CELL"
TECHNIQUE_ID = re.compile(r"\bT\d{4}(?:\.\d{3})?\b")


def test_briefs_report_the_stored_evidence(built: Built, catalog: Catalog) -> None:
    with session_scope() as s:
        facts = gather_facts(s, built.dco_id, catalog, now=NOW)
        [run] = s.exec(select(HuntRun).where(HuntRun.dco_id == built.dco_id)).all()
        outcomes = current_outcomes(s, built.dco_id)
        now_scores, before_scores = latest_scores(s, built.dco_id), latest_scores(s, built.dco_id, back=1)
        awaiting = risks_needing_decision(s, NOW, dco_id=built.dco_id)
        actions = list_actions(s, dco_id=built.dco_id)
    tech = technical_brief(facts)

    # hunts: the run as stored, split real / exercise
    assert run.hits == built.hunt_hits > 0 and run.events_read == built.events_read == 184
    assert (f"read {run.events_read} events with {run.rule_count} rules: {run.hits} hits, of which "
            f"{run.hits - run.exercise_hits} real and {run.exercise_hits} exercise") in tech
    fired = {st["rule_id"]: st for st in run.rule_stats.values() if st["hits"]}
    for rule_id, st in fired.items():
        assert f"| `{rule_id}` | {st['title']} |" in tech
    lsass = sum(int(st["hits"]) for st in fired.values() if "T1003.001" in st["technique_ids"])
    assert f"| T1003.001 | OS Credential Dumping: LSASS Memory | {lsass} | 0 |" in tech

    # emulation outcomes by defensive tool, counted from the outcome rows
    by_tool: dict[str, Counter[str]] = {}
    for o in outcomes:
        by_tool.setdefault(o.tool, Counter())[o.outcome.value] += 1
    assert set(by_tool) == {"EDR", "Sysmon+SIEM"}
    for tool, c in by_tool.items():
        assert f"| {tool} | {c['prevented']} | {c['alerted']} | {c['logged']} | {c['none']} |" in tech

    # coverage before and after, from the two assessments in the score log
    for label, scores in (("before", before_scores), ("now", now_scores)):
        detected = sum(1 for x in scores if reaches(x.detection, 1))
        mean_det = sum(x.detection for x in scores) / len(scores)
        assert re.search(rf"\| {label} \| [^|]+ \| {len(scores)} \| [-\d.]+ \| {mean_det:.2f} \| {detected} \|", tech)
    lsass_score = next(x for x in now_scores if x.technique_id == "T1003.001")
    assert lsass_score.detection >= 4  # the EDR alert counts
    row = next(ln for ln in tech.splitlines() if ln.startswith("| T1003.001 | OS Credential Dumping: LSASS Memory | c"))
    assert f"| {lsass_score.detection:.1f} |" in row

    # gaps with data components, detection-engineering actions
    top_gap = facts.gaps[0]
    comps = [catalog.data_component(c).name for c in catalog.technique(top_gap.technique_id).data_component_ids]
    assert ", ".join(comps) in tech
    engineering = [a for a in actions if a.kind.value == "detection-engineering"]
    assert engineering and all(a.title in tech for a in engineering)

    # decisions needed: every risk the register says awaits one, with its body
    assert awaiting and {r.id for r, _ in awaiting} == {d.id for d in facts.decisions}
    for risk, body in awaiting:
        assert re.search(rf"\| `{risk.id}` \| {risk.score} \(.*\| {body} \| {risk.review_date.isoformat()} \|", tech)

    # overdue actions, by the follow-up rule
    overdue = [a for a in actions if is_overdue(a.status, a.due_date, NOW.date())]
    assert overdue and len(facts.overdue_actions) == len(overdue)
    assert facts.rag.level == "red" and f"{len([a for a in overdue if a.priority.value in ('critical', 'high')])} " \
        "urgent action(s) overdue" in facts.rag.reasons
    assert len(facts.incidents) == 1 and facts.incidents[0].technique_id == "T1003.001"

    # the marking heads and closes the document
    lines = tech.strip().splitlines()
    assert BANNER in lines[0] and BANNER in lines[-1]


def test_executive_brief_speaks_plainly(built: Built, catalog: Catalog) -> None:
    with session_scope() as s:
        facts = gather_facts(s, built.dco_id, catalog, now=NOW)
    md = executive_brief(facts)
    lines = md.strip().splitlines()
    assert BANNER in lines[0] and BANNER in lines[-1]
    assert "## Bottom line up front" in md and "**Status: RED**" in md
    cov = facts.coverage_now
    assert cov is not None and f"Today we would raise an alert for {cov.detected} of {cov.techniques}" in md
    assert f"{built.real_hits} matches came from real activity" in md

    risks = key_risks(facts)
    assert 3 <= len(risks) <= 5
    worst = risks[0]
    assert worst.score == max(d.score for d in facts.decisions)
    # Decisions are the grouped ones a board takes (issue 9; was one line per risk), each with body and date.
    first = facts.decision_groups[0]
    assert f"- **{first.authority}** by **{first.decide_by.isoformat()}**: {first.title}" in md
    assert "steal passwords and account credentials" in md  # LSASS dumping, in business terms

    # every technique id comes right after its name (never a bare code); no tactic jargon
    found = list(TECHNIQUE_ID.finditer(md))
    assert found
    for m in found:
        name = technique_name(catalog, m.group())
        assert md[:m.start()].endswith(f"{name} (ATT&CK "), f"{m.group()} without its name"
    assert "credential-access" not in md and "lateral-movement" not in md
    assert "MITRE ATT&CK is a public catalogue" in md


def test_html_briefs_are_self_contained_and_marked(built: Built, catalog: Catalog, tmp_path: Path) -> None:
    with session_scope() as s:
        facts = gather_facts(s, built.dco_id, catalog, now=NOW)
    files = write_briefs(facts, tmp_path, "both")
    assert sorted(files) == ["executive-html", "executive-md", "technical-html", "technical-md"]
    for key in ("executive-html", "technical-html"):
        html = files[key].read_text(encoding="utf-8")
        assert html.count("NATO UNCLASSIFIED — REL TO DCO CELL") >= 2 and html.count("TLP:AMBER") >= 3
        assert html.index('role="banner"') < html.index("<main>") < html.index('role="contentinfo"')
        assert "<script" not in html and "<link" not in html and 'src="http' not in html
    # HTML escapes what analysts typed
    assert "ATT&amp;CK" in files["executive-html"].read_text(encoding="utf-8")
    only_exec = write_briefs(facts, tmp_path / "exec", "executive")
    assert sorted(only_exec) == ["executive-html", "executive-md"]


def test_brief_gaps_follow_the_stored_gap_rank(built: Built, catalog: Catalog) -> None:
    """The brief lists gaps in the order the coverage table and follow-up use (rank_gaps, stored per run)."""
    with session_scope() as s:
        facts = gather_facts(s, built.dco_id, catalog, now=NOW, top_gaps=10_000)
        scores = latest_scores(s, built.dco_id)
    ranked = sorted((sc for sc in scores if sc.priority > 0), key=lambda sc: int(sc.explanation["gap_rank"]))
    assert ranked and [t.technique_id for t in facts.gaps] == [sc.technique_id for sc in ranked]


def test_executive_brief_numbers_match_the_plan_and_assessment(built: Built, catalog: Catalog) -> None:
    """Issue 9: one page a principal reads — no rule ids, no risk told twice, every number the plan's or the
    latest assessment's, the trend by real dates."""
    import re

    from dcoflow.models.plan import PlanRecord
    from dcoflow.models.repository.assessment import runs

    with session_scope() as s:
        facts = gather_facts(s, built.dco_id, catalog, now=NOW)
        plan = s.get(PlanRecord, built.dco_id)
        assessments = runs(s, built.dco_id)
    md = executive_brief(facts)
    n = facts.numbers
    assert plan is not None and n is not None
    latest = assessments[-1].summary
    assert n.planned == plan.summary["techniques"] and f"**{n.planned}** attacker techniques were planned" in md
    assert (n.detected, n.assessed) == (latest["detected"], latest["techniques"])
    assert f"Today we would raise an alert for {n.detected} of {n.assessed} assessed techniques" in md
    assert f"tested {n.tested} of the {n.planned} attacker techniques it planned" in md
    assert 0 < n.tested <= n.planned
    # No rule ids (Sigma rule UUIDs, the rules that fired) and no STIX or row ids.
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", md)
    assert all(r.rule_id not in md for r in facts.hunts.rules_fired)
    assert "risk-" not in md and "act-" not in md
    # Each top risk once, one per technique; the trend lists each assessment by its date.
    top = [line for line in md.splitlines() if re.match(r"^\d\. \*\*A (severe|significant|moderate) risk", line)]
    assert len(top) == len(set(top)) == len(key_risks(facts))
    assert [f"| {a.assessed_at:%Y-%m-%d} |" in md for a in assessments] == [True] * len(assessments)
    decisions = [line for line in md.splitlines() if line.startswith("- **") and "by **" in line]
    assert 1 <= len(decisions) <= 5



def test_a_brief_reads_both_assessments_in_two_queries(built: Built) -> None:
    from dcoflow.models.repository.assessment import newest_and_previous_scores

    with session_scope() as s:
        now, before = newest_and_previous_scores(s, built.dco_id)
        assert [x.id for x in now] == [x.id for x in latest_scores(s, built.dco_id)] and now
        assert [x.id for x in before] == [x.id for x in latest_scores(s, built.dco_id, back=1)] and before
        assert newest_and_previous_scores(s, "no-such-dco") == ([], [])


def test_brief_decision_totals_split_by_body_as_each_pack_shows_them(built: Built, catalog: Catalog) -> None:
    """The executive brief gave one total of grouped decisions (CRMG's and BCISOA's together) while the CRMG
    pack a reader opens showed only CRMG's: the brief now says how the total splits, and each body's share
    is the count that body's pack puts on its agenda."""
    from datetime import timedelta

    from dcoflow.tasks.reporting.meetings import build_pack, create_meeting

    with session_scope() as s:
        facts = gather_facts(s, built.dco_id, catalog, now=NOW)
        split = facts.decisions_by_body
        assert len(split) > 1, "the fixture should have risks for more than one body"
        assert sum(n for _, n, _ in split) == len(facts.decision_groups)
        assert sum(r for _, _, r in split) == len(facts.decisions)
        at = NOW + timedelta(days=1)
        for body, groups, risks in split:
            pack = build_pack(s, create_meeting(s, built.dco_id, body, at, now=NOW).id, catalog, now=NOW,
                              max_decisions=10**6)
            own = [g for g in pack.decisions if all(pack.entries[c.item_id].item.authority == body for c in g.cases)]
            assert (len(own), sum(g.size for g in own)) == (groups, risks), body
    md = executive_brief(facts)
    bluf = next(line for line in md.splitlines() if "grouped decision(s)" in line)
    for body, groups, risks in split:
        assert f"{body} {groups} covering {risks}" in bluf
