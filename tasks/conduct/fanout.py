"""A hunt fanned out over workers: one hunt run, its telemetry cut into shards, each shard hunted
wherever a worker takes it and recorded into the same run.

Three user-level actions, each opening its own session (they run in different processes, often on
different hosts, against one PostgreSQL): ``plan_fanout`` fixes the rules, cuts the data into shards
and opens the run; ``hunt_shard`` hunts one shard's files and records them under the shard's name;
``finish_fanout`` completes the run (or ``fail_fanout`` marks it failed). A shard recorded twice
(a worker lost after it committed, then the shard retried) replaces its own figures, and STIX ids
are deterministic per event, so the run ends with exactly the results of an uninterrupted hunt.
Every worker needs the same rule and telemetry paths (a shared or replicated file system).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dcoflow.connectors.content.sigma_rules import load_rule_index
from dcoflow.connectors.telemetry import iter_data_files
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.models.gates import require_conduct
from dcoflow.models.hunt_run import derive_hunt_key
from dcoflow.models.hunt_summary import HuntSummary, hunt_summary
from dcoflow.models.hunting import HuntSelection
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.shards import Shard, plan_shards
from dcoflow.tasks.conduct.hunt import plan_selection
from dcoflow.tasks.conduct.hunt_record import complete_hunt_run, fail_hunt_run, record_hunt, start_hunt_run
from dcoflow.tasks.conduct.local_hunt import DEFAULT_MAX_MEMBER_BYTES, run_local_hunt


@dataclass(slots=True)
class FanoutPlan:
    dco_id: str
    hunt_key: str
    run_id: str
    source: str
    rule_paths: list[str]
    rule_ids: list[str]
    shards: list[Shard]
    done: list[str] = field(default_factory=list)  # shards already recorded (a resumed hunt skips them)


def plan_fanout(
    dco: str,
    data: list[str],
    rules_path: list[str],
    selection: HuntSelection | None,
    *,
    shards: int,
    hunt_key: str | None = None,
) -> FanoutPlan:
    """The rules, the shards and the (new or resumed) hunt run of a fanned-out hunt; ``selection`` None:
    the DCO's hunt plan."""
    if not data:
        raise ValidationError("a fanned-out hunt needs telemetry paths", field="data", object="hunt-fanout")
    files = [Path(f) for f in iter_data_files([Path(p) for p in data])]
    if not files:
        raise ValidationError("no telemetry files under the given paths", field="data", object=", ".join(data))
    source = "fanout:" + ", ".join(data)
    cut = plan_shards([(str(f), f.stat().st_size) for f in files], shards)
    with session_scope() as s:
        op = get_operation(s, dco)
        dco_id = op.id
        require_conduct(op.id, op.state, op.dco.window, datetime.now(UTC), "hunt")  # before any shard starts
        rules = load_rule_index([Path(p) for p in rules_path]).select(selection or plan_selection(s, op))
        if not rules:
            raise ValidationError("no Sigma rule matches the selection", field="rules", object="hunt-fanout")
        key = hunt_key or derive_hunt_key([r.rule_id for r in rules], source)
        run = start_hunt_run(s, dco_id, hunt_key=key, source=source, rules=rules)
        done = [sh.key for sh in cut if sh.done_in(run.inputs)]
        run_id = run.id
    return FanoutPlan(dco_id, key, run_id, source, sorted({r.path for r in rules}), [r.rule_id for r in rules],
                      cut, done)


def hunt_shard(
    dco_id: str,
    hunt_key: str,
    shard: str,
    files: list[str],
    rule_paths: list[str],
    rule_ids: list[str],
    source: str,
    *,
    sample: int = 20,
    workers: int | None = None,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    actor: str = "dcoflow",
) -> dict[str, Any]:
    """Hunt one shard's files with the run's rules and record them into the run under ``shard``."""
    from dcoflow.connectors.attack import load_catalog

    outcome = run_local_hunt([Path(p) for p in rule_paths], [Path(f) for f in files],
                             HuntSelection(rule_ids=rule_ids), sample=sample, workers=workers,
                             max_member_bytes=max_member_bytes)
    outcome.source = source  # one data source for the whole run, whichever shard saw the event
    catalog = load_catalog()
    with session_scope() as s:
        record_hunt(s, dco_id, outcome, hunt_key=hunt_key, catalog=catalog, complete=False, actor=actor, shard=shard)
    return {"shard": shard, "files": len(files), "events_read": outcome.events_read,
            "hits": sum(m.count for m in outcome.matches)}


def finish_fanout(dco_id: str, hunt_key: str, *, actor: str = "dcoflow") -> HuntSummary:
    with session_scope() as s:
        run = complete_hunt_run(s, dco_id, hunt_key, actor=actor)
        summary = hunt_summary(run)
    return summary


def fail_fanout(dco_id: str, hunt_key: str, error: str, *, actor: str = "dcoflow") -> None:
    with session_scope() as s:
        fail_hunt_run(s, dco_id, hunt_key, error, actor=actor)
