"""Recording a hunt: the HuntRun row, the STIX evidence and the audit event.

Idempotent by construction: the run id is deterministic per (DCO, hunt key), STIX ids are
deterministic per natural key, and ``settle_versions`` keeps the stored timestamps of an object
whose content did not change, so recording the same outcome twice writes nothing new. A hunt
recorded in rule batches (``run_hunt_batches``) commits each batch; when a batch fails the run is
marked failed with everything before it kept, and a re-run with the same key skips the rules
already recorded and completes it.

Exercise separation: an event is activity of the DCO's own emulation, or of another DCO's acknowledged
live window, by the pure rules in ``dcoflow.models.exercise``; ``exercise_markers_for`` reads the
markers and windows they need from the store. Summaries for people are ``dcoflow.models.hunt_summary``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from dcoflow.core.db import session_scope
from dcoflow.core.errors import NotFoundError
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.emulation import dco_marker
from dcoflow.models.exercise import ExerciseMarker, ExerciseWindow, exercise_of, is_exercise
from dcoflow.models.gates import require_conduct
from dcoflow.models.hunt_run import HuntRun, HuntStatus, hunt_run_id
from dcoflow.models.hunting import HuntOutcome, RuleInfo
from dcoflow.models.repository.hunt import get_hunt_run, open_hunt_run
from dcoflow.models.repository.operation import get_operation, record_event
from dcoflow.models.repository.stix_store import latest_objects, newest_versions, put_objects, resolve_random_ids
from dcoflow.models.stix import hunt_objects as ho
from dcoflow.models.stix.common import dcoflow_identity, marking_refs
from dcoflow.models.stix.rows import stix_now, stix_time
from dcoflow.tasks.conduct.deconfliction import deconflicted_windows


def exercise_markers_for(session: Session, dco_id: str) -> list[ExerciseMarker]:
    """The DCO's marker, a window per recorded emulation outcome (sightings with ``x_dco_step_id``), and
    the acknowledged live windows of other DCOs (their exercise activity is not a real hit either)."""
    markers: list[ExerciseMarker] = [dco_marker(dco_id), *deconflicted_windows(session, except_dco=dco_id)]
    for obj in latest_objects(session, dco_id, ["sighting"]):
        if not obj.get("x_dco_step_id") or not obj.get("first_seen"):
            continue
        start = ho.parse_time(obj["first_seen"])
        end = ho.parse_time(obj.get("last_seen") or obj["first_seen"])
        if start and end:
            markers.append(ExerciseWindow(start, end, obj.get("x_dco_target"), obj["x_dco_step_id"]))
    return markers


# -- ATT&CK references ----------------------------------------------------------------------------------


def technique_refs(catalog: Catalog | None, technique_ids: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Tagged technique id → attack-pattern STIX id (revoked ids follow their replacement), and the
    ids the catalog does not know with why (kept on the objects, reported, never dropped)."""
    refs: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for tid in dict.fromkeys(t.upper() for t in technique_ids):
        if catalog is None:
            unknown[tid] = "no ATT&CK catalog loaded"
            continue
        res = catalog.resolve(tid, warn=False)
        tech = catalog.get_technique(res.attack_id) if res.attack_id else None
        if tech is None:
            unknown[tid] = res.note or f"{tid} is unknown"
        else:
            refs[tid] = tech.stix_id
    return refs, unknown


# -- versions ---------------------------------------------------------------------------------------

_TIMESTAMPS = ("created", "modified", "valid_from")


def _content(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _TIMESTAMPS}


def next_modified(previous: str, now: str) -> str:
    """``now``, or 1 ms after ``previous`` when ``now`` is not strictly newer (a new STIX version)."""
    if now > previous:
        return now
    prev = ho.parse_time(previous) or datetime.now(UTC)
    return stix_time(prev + timedelta(milliseconds=1))


def settle_versions(session: Session, dco_id: str, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give objects that already exist (for this DCO) their stored timestamps when nothing changed,
    else keep ``created`` (and ``valid_from``) and make a strictly newer ``modified``."""
    resolve_random_ids(session, dco_id, objects)  # final SCO ids first: refs to them are content
    stored = newest_versions(session, dco_id, [o["id"] for o in objects if "modified" in o])
    for obj in objects:
        prev = stored.get(obj["id"])
        if prev is None:
            continue
        if _content(prev) == _content(obj):
            for key in _TIMESTAMPS:
                if key in prev:
                    obj[key] = prev[key]
        else:
            obj["created"] = prev.get("created", obj.get("created"))
            if "valid_from" in prev:
                obj["valid_from"] = prev["valid_from"]
            obj["modified"] = next_modified(prev["modified"], obj["modified"])
    return objects


# -- hunt runs ----------------------------------------------------------------------------------------


def start_hunt_run(
    session: Session,
    dco_id: str,
    *,
    hunt_key: str,
    source: str,
    rules: Sequence[RuleInfo] = (),
    start: datetime | None = None,
    end: datetime | None = None,
) -> HuntRun:
    """The run for (DCO, hunt key), created as running if new; a failed run goes back to running."""
    get_operation(session, dco_id)  # the DCO must exist
    run_id = hunt_run_id(dco_id, hunt_key)
    # Created once even when the same hunt is recorded from two places at once (insert-if-absent), then
    # locked: a concurrent recording of this run waits for ours and merges into what it finds.
    run, is_new = open_hunt_run(session, HuntRun(id=run_id, dco_id=dco_id, hunt_key=hunt_key, source=source,
                                                 window_start=start, window_end=end))
    changed = False
    new_ids = [r.rule_id for r in rules if r.rule_id not in run.rule_ids]
    if new_ids:
        run.rule_ids = [*run.rule_ids, *new_ids]
        run.rule_count = len(run.rule_ids)
        changed = True
    if run.status == HuntStatus.FAILED:
        run.status, run.error = HuntStatus.RUNNING, None
        changed = True
    if changed and not is_new:
        run.version += 1
    session.add(run)
    session.flush()
    return run


def fail_hunt_run(session: Session, dco_id: str, hunt_key: str, error: str, *, actor: str = "dcoflow") -> HuntRun:
    run = get_hunt_run(session, hunt_run_id(dco_id, hunt_key))
    if run is None:
        raise NotFoundError("no such hunt run", object=hunt_key)
    run.status, run.error = HuntStatus.FAILED, error[:2000]
    run.finished_at = datetime.now(UTC)
    run.version += 1
    session.add(run)
    record_event(session, dco_id, actor, "hunt-failed", {"hunt_run": run.id, "error": run.error})
    return run


def _with_shard(previous: Mapping[str, Any] | None, shard: str, entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` (one shard's figures for a rule) folded into the rule's figures from the other shards."""
    shards = {**(previous or {}).get("shards", {}),
              shard: {"hits": entry["hits"], "exercise_hits": entry["exercise_hits"], "hosts": entry["hosts"],
                      "exact": entry.get("exact", True)}}
    hosts: Counter[str] = Counter()
    for part in shards.values():
        hosts.update(part["hosts"])
    return {**entry, "shards": shards, "hits": sum(int(p["hits"]) for p in shards.values()),
            "exercise_hits": sum(int(p["exercise_hits"]) for p in shards.values()), "hosts": dict(hosts),
            "exact": all(p.get("exact", True) for p in shards.values())}


def _merge_skipped(existing: list[dict[str, Any]], outcome: HuntOutcome) -> list[dict[str, Any]]:
    by_key = {(s["path"], s.get("rule_id")): s for s in existing}
    for s in outcome.skipped:
        by_key[(s.path, s.rule_id)] = {"path": s.path, "rule_id": s.rule_id, "reason": s.reason}
    return sorted(by_key.values(), key=lambda s: (s["path"], s.get("rule_id") or ""))


def _snapshot(run: HuntRun) -> tuple[Any, ...]:
    return (run.status, run.hits, run.exercise_hits, run.events_read, run.bad_records, run.skipped,
            run.no_logsource, run.rule_stats, run.recorded_rules, run.unknown_techniques, run.inputs,
            run.rule_ids, run.error)


def record_hunt(
    session: Session,
    dco_id: str,
    outcome: HuntOutcome,
    *,
    hunt_key: str,
    catalog: Catalog | None,
    exercise_markers: Sequence[ExerciseMarker] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    complete: bool = True,
    actor: str = "dcoflow",
    shard: str | None = None,
) -> HuntRun:
    """Record one hunt outcome (or one batch of it) for a DCO; see the module doc for idempotency.

    ``exercise_markers`` defaults to what the store knows (``exercise_markers_for``).
    ``complete=False`` records a batch and leaves the run running. ``shard`` names a slice of the
    *data* (a fanned-out hunt: every shard runs the same rules over other files): its per-rule figures
    are kept under that name and the rule's totals are their sum, so shards add up, and recording a
    shard again (a retried worker) replaces its own figures instead of adding them twice.
    """
    op = get_operation(session, dco_id)
    require_conduct(op.id, op.state, op.dco.window, datetime.now(UTC), "hunt")
    markers = list(exercise_markers) if exercise_markers is not None else exercise_markers_for(session, dco_id)
    run = start_hunt_run(session, dco_id, hunt_key=hunt_key, source=outcome.source, rules=outcome.rules_run,
                         start=start, end=end)
    before = _snapshot(run)
    previous_status = run.status
    refs, definitions = marking_refs(op.dco.marking)
    source_identity = ho.data_source_identity(outcome.source, dco_id)
    ctx = ho.StixContext(dco_id, tuple(refs), source_identity["id"], stix_now())

    tech_refs, unknown = technique_refs(catalog, (t for r in outcome.rules_run for t in r.technique_ids))
    objects: list[dict[str, Any]] = [dcoflow_identity(), source_identity, *definitions]
    grouped: list[str] = []
    for rule in outcome.rules_run:
        ind = ho.indicator(rule, ctx)
        rels = ho.indicates(rule, tech_refs, ctx)
        objects += [ind, *rels]
        grouped += [ind["id"], *(r["id"] for r in rels)]

    stats: dict[str, Any] = dict(run.rule_stats)
    for rule in outcome.rules_run:
        stats[rule.rule_id] = {"rule_id": rule.rule_id, "title": rule.title, "technique_ids": rule.technique_ids,
                               "hits": 0, "exercise_hits": 0, "hosts": {}, "logsource": rule.logsource}
    # An event sampled by several rules is one object: its SCOs, observed-data and exercise test
    # are made once (the local engine shares the event dict between the rules it matched).
    per_event: dict[int, tuple[dict[str, Any] | None, bool, str | None]] = {}
    for match in outcome.matches:
        rule = match.rule
        hosts: Counter[str] = Counter()
        exercise_n = 0
        for event in match.events:
            known = per_event.get(id(event))
            if known is None:
                scos = ho.observables(event, ctx)
                od = ho.observed_data(event, scos, ctx) if scos else None
                known = per_event[id(event)] = (od, is_exercise(event, markers), exercise_of(event, markers))
                objects += [*scos, *([od] if od else [])]
            od, exercise, other = known
            exercise_n += exercise
            sig = ho.sighting(rule, event, od["id"] if od else None, ctx, hunt_run_id=run.id, exercise=exercise)
            if other is not None:  # another DCO's deconflicted exercise: say which
                sig["x_dco_exercise_of"] = other
            hosts[sig["x_dco_host"] or "(unknown)"] += 1
            objects.append(sig)
            grouped += [sig["id"], *([od["id"]] if od else [])]
        stats[rule.rule_id] = {"rule_id": rule.rule_id, "title": rule.title, "technique_ids": rule.technique_ids,
                               "hits": match.count, "exact": match.exact, "exercise_hits": exercise_n,
                               "hosts": dict(hosts), "logsource": rule.logsource}
    if shard is not None:
        ran = {r.rule_id for r in outcome.rules_run}
        stats = {rid: _with_shard(run.rule_stats.get(rid), shard, entry) if rid in ran else entry
                 for rid, entry in stats.items()}

    run.rule_stats = stats
    run.hits = sum(int(s["hits"]) for s in stats.values())
    run.exercise_hits = sum(int(s["exercise_hits"]) for s in stats.values())
    # rule batches read the same events again (the most any batch read); data shards read other events (the sum)
    run.events_read = (sum({**run.inputs, **{r.source: r.read for r in outcome.reports}}.values()) if shard
                       else max(run.events_read, outcome.events_read))
    run.bad_records = max(run.bad_records, sum(r.skipped for r in outcome.reports))
    run.inputs = {**run.inputs, **{r.source: r.read for r in outcome.reports}} or {outcome.source: run.events_read}
    run.skipped = _merge_skipped(run.skipped, outcome)
    run.no_logsource = sorted({*run.no_logsource, *(r.rule_id for r in outcome.no_logsource)})
    run.unknown_techniques = sorted({*run.unknown_techniques, *unknown})
    newly = [r.rule_id for r in outcome.rules_run if r.rule_id not in run.recorded_rules]
    if newly:
        run.duration_s += outcome.duration_s
    done = [*outcome.rules_run, *outcome.no_logsource]
    run.recorded_rules = sorted({*run.recorded_rules, *(r.rule_id for r in done),
                                 *(s.rule_id for s in outcome.skipped if s.rule_id)})

    previous_grouping = [o for o in latest_objects(session, dco_id, ["grouping"])
                         if o.get("x_dco_hunt_run") == run.id]
    if previous_grouping:
        grouped += previous_grouping[0].get("object_refs", [])
    rule_list = [{"rule_id": s["rule_id"], "technique_ids": s["technique_ids"], "hits": s["hits"]}
                 for s in sorted(stats.values(), key=lambda s: str(s["rule_id"]))]
    objects.append(ho.hunt_grouping(run.id, ctx, name=f"Hunt {run.hunt_key[:12]} on {run.source}"[:250],
                                    object_refs=grouped, rules=rule_list, channels=run.inputs, source=run.source))
    put_objects(session, settle_versions(session, dco_id, objects), dco_id)

    if complete:
        run.status = HuntStatus.COMPLETED
        run.error = None
        if previous_status != HuntStatus.COMPLETED or run.finished_at is None:
            run.finished_at = datetime.now(UTC)
    if _snapshot(run) != before:
        run.version += 1
        if complete and previous_status != HuntStatus.COMPLETED:
            record_event(session, dco_id, actor, "hunt-run", {
                "hunt_run": run.id, "hunt_key": run.hunt_key, "source": run.source, "rules": run.rule_count,
                "hits": run.hits, "exercise_hits": run.exercise_hits, "events_read": run.events_read,
                "skipped": len(run.skipped), "unknown_techniques": unknown,
            })
    session.add(run)
    session.flush()
    return run


def complete_hunt_run(session: Session, dco_id: str, hunt_key: str, *, actor: str = "dcoflow") -> HuntRun:
    run = get_hunt_run(session, hunt_run_id(dco_id, hunt_key))
    if run is None:
        raise NotFoundError("no such hunt run", object=hunt_key)
    if run.status != HuntStatus.COMPLETED:
        run.status, run.error, run.finished_at = HuntStatus.COMPLETED, None, datetime.now(UTC)
        run.version += 1
        session.add(run)
        record_event(session, dco_id, actor, "hunt-run", {
            "hunt_run": run.id, "hunt_key": run.hunt_key, "source": run.source, "rules": run.rule_count,
            "hits": run.hits, "exercise_hits": run.exercise_hits, "events_read": run.events_read,
            "skipped": len(run.skipped), "unknown_techniques": run.unknown_techniques,
        })
    return run


SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass(slots=True)
class OpenedHunt:
    """A hunt run opened for recording in batches: the rules still to run and the exercise markers to judge
    hits by (read once, not per batch)."""

    dco_id: str
    hunt_key: str
    todo: list[RuleInfo]
    markers: list[ExerciseMarker]


def open_hunt(
    session: Session,
    dco_id: str,
    rules: Sequence[RuleInfo],
    *,
    hunt_key: str,
    source: str,
    start: datetime | None = None,
    end: datetime | None = None,
    exercise_markers: Sequence[ExerciseMarker] | None = None,
) -> OpenedHunt:
    """Pass the conduct gate, open (or resume) the run and say which rules are not recorded yet."""
    op = get_operation(session, dco_id)
    require_conduct(op.id, op.state, op.dco.window, datetime.now(UTC), "hunt")
    run = start_hunt_run(session, op.id, hunt_key=hunt_key, source=source, rules=rules, start=start, end=end)
    done = set(run.recorded_rules)
    markers = list(exercise_markers) if exercise_markers is not None else exercise_markers_for(session, op.id)
    return OpenedHunt(op.id, hunt_key, [r for r in rules if r.rule_id not in done], markers)


def record_batches(
    opened: OpenedHunt,
    engine: Callable[[list[RuleInfo]], HuntOutcome],
    *,
    catalog: Catalog | None,
    batch_size: int = 50,
    start: datetime | None = None,
    end: datetime | None = None,
    session_factory: SessionFactory = session_scope,
    actor: str = "dcoflow",
) -> HuntRun:
    """Run ``engine`` over the opened hunt's rules in batches, committing each batch's evidence as it comes.

    A failing batch marks the run failed (the error names it) and re-raises; everything recorded
    before stays. Opening the same key again skips the rules already recorded.
    """
    dco_id, hunt_key, todo = opened.dco_id, opened.hunt_key, opened.todo
    for i in range(0, len(todo), max(1, batch_size)):
        batch = todo[i:i + batch_size]
        try:
            outcome = engine(batch)
        except Exception as exc:
            with session_factory() as s:
                fail_hunt_run(s, dco_id, hunt_key, f"{type(exc).__name__}: {exc}", actor=actor)
            raise
        with session_factory() as s:
            record_hunt(s, dco_id, outcome, hunt_key=hunt_key, catalog=catalog, exercise_markers=opened.markers,
                        start=start, end=end, complete=False, actor=actor)
    with session_factory() as s:
        return complete_hunt_run(s, dco_id, hunt_key, actor=actor)


def run_hunt_batches(
    dco_id: str,
    rules: Sequence[RuleInfo],
    engine: Callable[[list[RuleInfo]], HuntOutcome],
    *,
    hunt_key: str,
    source: str,
    catalog: Catalog | None,
    exercise_markers: Sequence[ExerciseMarker] | None = None,
    batch_size: int = 50,
    start: datetime | None = None,
    end: datetime | None = None,
    session_factory: SessionFactory = session_scope,
    actor: str = "dcoflow",
) -> HuntRun:
    """``open_hunt`` in its own session, then ``record_batches``."""
    with session_factory() as s:
        opened = open_hunt(s, dco_id, rules, hunt_key=hunt_key, source=source, start=start, end=end,
                           exercise_markers=exercise_markers)
    return record_batches(opened, engine, catalog=catalog, batch_size=batch_size, start=start, end=end,
                          session_factory=session_factory, actor=actor)
