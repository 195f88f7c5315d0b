"""Triage of hunt hits: an analyst's verdict on a sighting, kept as a versioned row and a STIX opinion.

The opinion's id is fixed per (sighting, analyst); a re-triage writes the next ``TriageVerdict``
version and a new ``modified`` of the same opinion, so the history of both is kept. Repeating the
same verdict and note changes nothing.

User actions (each opens its session): ``hits_to_triage`` lists a run's untriaged hits and ``triage``
records verdicts and announces the confirmed findings; ``dco hunt hits/triage`` and the ``triage-hunt``
flow call the same two.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from dcoflow.core.db import session_scope
from dcoflow.core.errors import ConflictError, NotFoundError, ValidationError
from dcoflow.models.hunt_run import HuntRun, TriageVerdict, Verdict
from dcoflow.models.repository.hunt import (
    add_verdict,
    get_hunt_run,
    latest_hunt_run,
    latest_verdict,
    triaged_sightings,
)
from dcoflow.models.repository.operation import get_operation, record_event
from dcoflow.models.repository.stix_store import latest_objects, newest_row, object_history, put_objects
from dcoflow.models.stix import hunt_objects as ho
from dcoflow.models.stix.rows import stix_time
from dcoflow.tasks.conduct.hunt_record import next_modified

if TYPE_CHECKING:
    from dcoflow.models.followup import FindingInput

SKIP = "skip"  # a triage answer that leaves the hit untriaged


@dataclass(frozen=True, slots=True)
class UntriagedHit:
    """A real (non-exercise) hunt hit nobody has given a verdict yet."""

    sighting_id: str
    rule_id: str
    technique_ids: tuple[str, ...]
    host: str | None
    seen: str | None

    @property
    def summary(self) -> str:
        return (f"rule {self.rule_id} ({', '.join(self.technique_ids) or 'no technique'}) on "
                f"{self.host or 'an unknown host'}" + (f" at {self.seen}" if self.seen else ""))


def untriaged_hits(
    session: Session, dco: str, hunt_run: str | None = None
) -> tuple[HuntRun | None, list[UntriagedHit]]:
    """The DCO's hunt run (``hunt_run``, else its latest) and that run's real hits without any verdict.

    Exercise hits (the DCO's own emulation) are not triaged: they are evidence of detection, not findings.
    A DCO that never hunted gives ``(None, [])``.
    """
    op = get_operation(session, dco)
    if hunt_run is not None:
        run = get_hunt_run(session, hunt_run)
        if run is None or run.dco_id != op.id:
            raise NotFoundError(f"no hunt run {hunt_run} in DCO {op.id}", object=hunt_run,
                                hint="see `dco hunt runs`")
    else:
        run = latest_hunt_run(session, op.id)
        if run is None:
            return None, []
    sightings = [o for o in latest_objects(session, op.id, ["sighting"])
                 if o.get("x_dco_hunt_run") == run.id and not o.get("x_dco_exercise")]
    triaged = triaged_sightings(session, [str(o["id"]) for o in sightings])
    hits = [
        UntriagedHit(str(o["id"]), str(o.get("x_dco_rule_id", "")), tuple(o.get("x_dco_technique_ids") or ()),
                     o.get("x_dco_host"), o.get("first_seen"))
        for o in sightings if o["id"] not in triaged
    ]
    return run, sorted(hits, key=lambda h: (h.rule_id, h.host or "", h.seen or "", h.sighting_id))


def verdicts_for(hits: list[UntriagedHit], verdicts: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Match automation verdicts (keyed by sighting id, or by Sigma rule id for all its hits) to ``hits``.

    Returns ({sighting id: verdict or ``skip``}, keys that matched no hit); a sighting id wins over its
    rule id. Every value is checked before anything is recorded.
    """
    allowed = [v.value for v in Verdict] + [SKIP]
    for key, value in verdicts.items():
        if value not in allowed:
            raise ValidationError(f"unknown verdict {value!r} for {key}", field="verdicts", suggestions=allowed)
    chosen: dict[str, str] = {}
    used: set[str] = set()
    for hit in hits:
        for key in (hit.sighting_id, hit.rule_id):
            if key in verdicts:
                chosen[hit.sighting_id] = verdicts[key]
                used.add(key)
                break
    return chosen, sorted(set(verdicts) - used)


def hit_rows(hits: list[UntriagedHit]) -> list[dict[str, Any]]:
    """Table rows for listings (CLI ``--json``, Prefect artifacts)."""
    return [{"sighting": h.sighting_id, "rule": h.rule_id, "techniques": ", ".join(h.technique_ids),
             "host": h.host or "", "seen": h.seen or ""} for h in hits]


def _sighting(session: Session, sighting_id: str) -> tuple[dict[str, object], str | None]:
    row = newest_row(session, sighting_id)
    if row is None or row.type != "sighting":
        raise NotFoundError("no such sighting in the evidence store", object=sighting_id,
                            hint="see the sighting ids with `dco hunt runs --json` or the hunt's grouping")
    return row.object, row.dco_id


def triage_hit(
    session: Session,
    sighting_id: str,
    verdict: Verdict | str,
    analyst: str,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> TriageVerdict:
    """Record ``analyst``'s verdict on a sighting: the next TriageVerdict version + the STIX opinion."""
    try:
        verdict = Verdict(verdict)
    except ValueError:
        raise ValidationError(f"unknown verdict {verdict!r}", field="verdict",
                              suggestions=[v.value for v in Verdict]) from None
    if not analyst.strip():
        raise ValidationError("the analyst must be named", field="analyst")
    sighting, dco_id = _sighting(session, sighting_id)
    previous = latest_verdict(session, sighting_id, analyst)
    if previous is not None and previous.verdict == verdict and previous.note == note:
        return previous  # the same verdict again: nothing new to record
    moment = at or datetime.now(UTC)
    modified = stix_time(moment)
    opinion_created = modified
    if previous is not None:
        history = object_history(session, previous.opinion_id)
        if history:
            opinion_created = str(history[0]["created"])
            modified = next_modified(str(history[-1]["modified"]), modified)
    obj = ho.opinion(sighting, verdict.value, analyst, note, created=opinion_created, modified=modified)
    row = add_verdict(session, TriageVerdict(
        sighting_id=sighting_id, analyst=analyst, version=(previous.version + 1) if previous else 1,
        dco_id=dco_id or str(sighting.get("x_dco_id") or ""), verdict=verdict, note=note, at=moment,
        opinion_id=obj["id"],
    ))
    if row is None:  # the same analyst's verdict was recorded meanwhile (another terminal): it stands
        now = latest_verdict(session, sighting_id, analyst)
        if now is not None and now.verdict == verdict and now.note == note:
            return now
        raise ConflictError(
            f"{analyst}'s verdict on {sighting_id} was recorded meanwhile: "
            f"{now.verdict.value if now else '?'} (version {now.version if now else '?'}); yours was not stored",
            system="triage", object=sighting_id,
            details={"current": {"verdict": now.verdict.value, "note": now.note, "version": now.version}
                     if now else {}},
            hint="look again, then triage again to supersede it")
    put_objects(session, [obj], row.dco_id or None)
    if row.dco_id:
        record_event(session, row.dco_id, analyst, "triage", {
            "sighting": sighting_id, "verdict": verdict.value, "version": row.version, "opinion": obj["id"],
        })
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class TriageAnswer:
    sighting_id: str
    verdict: str
    analyst: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class TriageRecorded:
    """What one batch of answers recorded: the verdict rows (current versions) and counts per verdict, and how
    many confirmed findings were announced to Prefect (the escalate deployment's trigger)."""

    rows: list[TriageVerdict]
    announced: int = 0

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.verdict.value] = counts.get(row.verdict.value, 0) + 1
        return counts


def record_verdicts(answers: Sequence[TriageAnswer]) -> TriageRecorded:
    """Triage hunt hits (``dco hunt triage``, the ``triage-hunt`` flow): every answer's verdict in one
    transaction, all or nothing; ``skip`` answers are left out."""
    with session_scope() as s:
        return TriageRecorded([triage_hit(s, a.sighting_id, a.verdict, a.analyst, a.note)
                               for a in answers if a.verdict != SKIP])


def hits_to_triage(dco: str, hunt_run: str | None = None) -> tuple[str, HuntRun | None, list[UntriagedHit]]:
    """The DCO's id, its hunt run (``hunt_run``, else its latest) and that run's real hits without a verdict."""
    with session_scope() as s:
        dco_id = get_operation(s, dco).id
        return (dco_id, *untriaged_hits(s, dco_id, hunt_run))


def confirmed_findings(dco_id: str, sighting_ids: Collection[str]) -> list[FindingInput]:
    """The confirmed findings (escalation's view) among the given sightings, after their triage."""
    from dcoflow.tasks.follow_up.escalation import findings_from_store

    with session_scope() as s:
        return [f for f in findings_from_store(s, dco_id) if f.sighting_id in sighting_ids]


def triage(answers: Sequence[TriageAnswer]) -> TriageRecorded:
    """Triage hunt hits (``dco hunt triage``, the ``triage-hunt`` flow): record the verdicts
    (``record_verdicts``), then announce the true positives that became confirmed findings as Prefect events
    when a Prefect server can hear them (inside a flow, or with PREFECT_API_URL set); elsewhere nothing is
    marked announced, so a later follow-up run still announces them."""
    from dcoflow.tasks.events import events_reach_a_server

    recorded = record_verdicts(answers)
    if not events_reach_a_server():
        return recorded
    from dcoflow.tasks.follow_up.events import emit_findings

    positives: dict[str, set[str]] = {}
    for row in recorded.rows:
        if row.verdict == Verdict.TRUE_POSITIVE and row.dco_id:
            positives.setdefault(row.dco_id, set()).add(row.sighting_id)
    announced = sum(emit_findings(dco_id, confirmed_findings(dco_id, ids)) for dco_id, ids in positives.items())
    return TriageRecorded(recorded.rows, announced)


triage_task = task(name="triage-hits", cache_policy=NO_CACHE)(triage)
