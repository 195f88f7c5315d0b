"""Briefs, meetings and the STIX export as user actions, one function each: `dco brief`, `dco meeting …`,
`dco export stix` and the ``brief`` flow call these. Each opens its own session and loads the DCO (or
meeting) once; output folders come in as values (the caller reads DCO_OUTPUT_DIR).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from dcoflow.connectors.attack import ensure_catalog
from dcoflow.core.db import session_scope
from dcoflow.models.attack import Catalog
from dcoflow.models.followup import ActionStatus, Treatment
from dcoflow.tasks.retry import retry_when_retryable

Audience = Literal["technical", "executive", "both"]


def brief(
    dco: str,
    *,
    output_root: Path,
    output_dir: Path | None = None,
    audience: Audience = "both",
    attack_source: str | None = None,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """Write a DCO's technical and/or executive brief (Markdown, HTML) into ``output_dir``, or
    ``output_root/<dco id>``; returns its status, counts, files and the executive brief's Markdown."""
    from dcoflow.tasks.reporting.briefing import executive_brief, write_briefs
    from dcoflow.tasks.reporting.documents.products import gather_brief_documents

    catalog = ensure_catalog(catalog, attack_source)
    with session_scope() as session:
        docs = gather_brief_documents(session, dco, catalog)
    facts = docs.facts
    files = write_briefs(facts, output_dir or output_root / facts.dco_id, audience, docs.charts)
    return {"dco": facts.dco_id, "rag": facts.rag.level, "reasons": list(facts.rag.reasons),
            "label": facts.rag.label, "marking": facts.marking.label,
            "decisions": len(facts.decisions), "overdue_actions": len(facts.overdue_actions),
            "incidents": len(facts.incidents), "files": {k: str(v) for k, v in files.items()},
            "executive_md": executive_brief(facts, "md")}


brief_task = task(name="write-briefs", retry_condition_fn=retry_when_retryable, retries=1,
                  cache_policy=NO_CACHE)(brief)


def create_meeting(
    dco: str | None, body: str, scheduled_at: datetime, *, attendees: Sequence[str] | None = None, actor: str,
) -> dict[str, Any]:
    """Schedule a body's meeting about a DCO (``None``: all open DCOs) and build its agenda from the register."""
    from dcoflow.models.repository.meeting import meeting_items
    from dcoflow.tasks.reporting import meetings

    with session_scope() as session:
        meeting = meetings.create_meeting(session, dco, body, scheduled_at, attendees=attendees, actor=actor)
        items = meeting_items(session, meeting.id)
        return {**meetings.meeting_row(meeting, items), "agenda": [meetings.item_row(i) for i in items]}


def list_meetings(dco_id: str | None = None) -> list[dict[str, Any]]:
    """Meetings with their body, time, status and how many items were decided (two queries)."""
    from dcoflow.models.repository.meeting import items_by_meeting
    from dcoflow.models.repository.meeting import list_meetings as stored
    from dcoflow.tasks.reporting.meetings import meeting_row

    with session_scope() as session:
        found = stored(session, dco_id=dco_id)
        items = items_by_meeting(session, [m.id for m in found])
        return [meeting_row(m, items[m.id]) for m in found]


def agenda(meeting: str) -> list[dict[str, Any]]:
    """A meeting's agenda items (the ids to decide on)."""
    from dcoflow.models.repository.meeting import get_meeting, meeting_items
    from dcoflow.tasks.reporting.meetings import item_row

    with session_scope() as session:
        return [item_row(i) for i in meeting_items(session, get_meeting(session, meeting).id)]


def meeting_pack(meeting: str, out_dir: Path, *, attack_source: str | None = None,
                 catalog: Catalog | None = None) -> dict[str, str]:
    """Write the meeting's pack (Markdown, HTML) and its XLSX action tracker into ``out_dir``."""
    from dcoflow.tasks.reporting.meetings import build_pack, write_pack

    catalog = ensure_catalog(catalog, attack_source)
    with session_scope() as session:
        files = write_pack(build_pack(session, meeting, catalog), out_dir)
    return {k: str(v) for k, v in files.items()}


def prepare_meeting(dco: str, body: str, out_dir: Path, *, attack_source: str | None = None,
                    catalog: Catalog | None = None, actor: str = "brief-flow",
                    now: datetime | None = None) -> dict[str, Any]:
    """Build (or refresh) the body's meeting about the DCO now (to the minute) and write its pack."""
    from dcoflow.tasks.reporting.meetings import build_pack, create_meeting, write_pack

    catalog = ensure_catalog(catalog, attack_source)
    when = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    with session_scope() as session:
        meeting = create_meeting(session, dco, body, when, actor=actor)
        files = write_pack(build_pack(session, meeting.id, catalog), out_dir)
        return {"meeting": meeting.id, "files": {k: str(v) for k, v in files.items()}}


prepare_meeting_task = task(name="meeting-pack", retry_condition_fn=retry_when_retryable, retries=1,
                            cache_policy=NO_CACHE)(prepare_meeting)


def decide_item(item: str, outcome: str, by: str, *, decision: Treatment | None = None,
                expires_at: datetime | None = None, action_status: ActionStatus | None = None,
                owner: str | None = None, due: date | None = None) -> dict[str, Any]:
    """Record what the meeting said about an item (a risk decision goes to the register)."""
    from dcoflow.tasks.reporting import meetings

    with session_scope() as session:
        return meetings.item_row(meetings.decide_item(session, item, outcome, by, decision=decision,
                                                      expires_at=expires_at, action_status=action_status,
                                                      owner=owner, due=due))


def decide_group(meeting: str, group: str, outcome: str, by: str, *, decision: Treatment,
                 expires_at: datetime | None = None, attack_source: str | None = None,
                 catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """One decision for every risk of a grouped decision (``grp-…``) of the meeting."""
    from dcoflow.tasks.reporting import meetings

    catalog = ensure_catalog(catalog, attack_source)
    with session_scope() as session:
        return [meetings.item_row(i) for i in meetings.decide_group(session, meeting, group, catalog, outcome, by,
                                                                     decision=decision, expires_at=expires_at)]


def export_stix(dco: str, out_dir: Path, *, attack_source: str | None = None,
                catalog: Catalog | None = None) -> dict[str, Any]:
    """The DCO's STIX 2.1 bundle, validated, as one file in ``out_dir``; its object counts by type."""
    import json

    from dcoflow.tasks.reporting.stix_export import export_dco_bundle

    catalog = ensure_catalog(catalog, attack_source)
    with session_scope() as session:
        path = export_dco_bundle(session, dco, catalog, out_dir)
    objects = json.loads(path.read_text(encoding="utf-8"))["objects"]
    counts: dict[str, int] = {}
    for o in objects:
        counts[o["type"]] = counts.get(o["type"], 0) + 1
    return {"dco": dco, "bundle": str(path), "objects": len(objects), "by_type": counts}
