"""Running a hunt: the one function behind ``dco hunt``, the ``hunt`` flow and each DCO of the hunt sweep.

``run_hunt`` checks the DCO's conduct gate before any event is read, picks the rules (the given selection, or
the DCO's hunt plan), builds the engine for the data source (local telemetry files, or a SIEM client from the
connector registry) and, with a DCO, records the evidence in rule batches through ``run_hunt_batches``: each
batch commits, a failing batch marks the run failed with what came before kept, and a re-run with the same hunt
key resumes. Without a DCO nothing is stored and the outcome is summarised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from dcoflow.connectors.content.sigma_rules import load_rule_index
from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.models.gates import require_conduct
from dcoflow.models.hunt_run import HuntRun, derive_hunt_key
from dcoflow.models.hunt_summary import HuntSummary, hunt_summary, summarize_outcome
from dcoflow.models.hunting import HuntOutcome, HuntSelection, RuleInfo, SkippedRule, products_for
from dcoflow.models.operation import DcoState, Operation
from dcoflow.models.repository.hunt import list_hunt_runs
from dcoflow.models.repository.operation import get_operation, list_operations
from dcoflow.models.repository.plan import list_hypotheses
from dcoflow.tasks.conduct.hunt_record import open_hunt, record_batches

if TYPE_CHECKING:
    from dcoflow.connectors.siem import SiemClient

DataSourceKind = Literal["local", "elastic", "splunk"]
Engine = Callable[[list[RuleInfo]], HuntOutcome]
SIEM_BATCH = 50  # rules per recorded batch on a SIEM: a failure loses at most one batch of queries


@dataclass(slots=True)
class HuntResult:
    """What ``run_hunt`` did: the engine's outcome this time (batches merged; empty when a re-run found every
    rule recorded already) and the summary (of the recorded run with a DCO, else of the outcome)."""

    outcome: HuntOutcome
    summary: HuntSummary
    dco_id: str | None = None

    @property
    def run_id(self) -> str | None:
        return self.summary.run_id

    def as_dict(self) -> dict[str, object]:
        s = self.summary
        return {"dco": self.dco_id, "run_id": s.run_id, "status": s.status, "rules": s.rules_run, "hits": s.hits,
                "by_technique": s.by_technique, "gaps": len(s.gaps), "skipped": len(s.skipped),
                "events_read": s.events_read}


def plan_selection(session: Session, op: Operation) -> HuntSelection:
    """A DCO's hunt plan as a selection: its planned Sigma rule ids, else its hypotheses' techniques, scoped to
    the Sigma products of its platforms (a Windows-only DCO does not run Linux rules)."""
    products = products_for(op.dco.scope.platforms)
    rows = list_hypotheses(session, op.id)
    rule_ids = list(dict.fromkeys(str(r["rule_id"]) for h in rows for r in h.sigma_rules if r.get("rule_id")))
    if rule_ids:
        return HuntSelection(rule_ids=rule_ids, products=products)
    techniques = list(dict.fromkeys(h.technique_id for h in rows))
    if not techniques:
        raise ValidationError("the DCO has no hunt plan and no techniques or rule ids were given", object=op.id,
                              hint="plan the DCO first (`dco plan`) or pass techniques / rule ids")
    return HuntSelection(techniques=techniques, products=products)


def select_rules(rules_path: Sequence[Path], selection: HuntSelection) -> tuple[list[RuleInfo], list[SkippedRule]]:
    """The selected rules, and the rule files that could not be read (reported with the hunt)."""
    index = load_rule_index(list(rules_path))
    rules = index.select(selection)
    if not rules:
        raise ValidationError("no Sigma rule matches the selection", object="hunt",
                              details={"techniques": selection.techniques, "rule_ids": selection.rule_ids[:20]})
    return rules, [SkippedRule(path=b.location, rule_id=None, reason=b.reason) for b in index.report.bad]


def merge_outcomes(source: str, outcomes: Sequence[HuntOutcome]) -> HuntOutcome:
    """Rule batches of one hunt as one outcome: rules add up; every batch read the same events."""
    out = HuntOutcome(source=source)
    for o in outcomes:
        out.rules_run += o.rules_run
        out.matches += o.matches
        out.skipped += o.skipped
        out.no_logsource += o.no_logsource
        out.duration_s += o.duration_s
        out.rate_limited += o.rate_limited
        if o.events_read >= out.events_read:
            out.events_read, out.reports = o.events_read, o.reports
    return out


def _siem_engine(registry: ConnectorRegistry, client: SiemClient, kind: Literal["elastic", "splunk"],
                 index: str | None, language: Literal["lucene", "eql"], start: datetime, end: datetime,
                 sample: int) -> tuple[Engine, str]:
    from dcoflow.tasks.conduct.siem_hunt import run_siem_hunt

    s = registry.settings
    idx = registry.siem_index(kind, index)
    if kind == "elastic":
        backend: Literal["elastic-lucene", "elastic-eql", "splunk"] = (
            "elastic-eql" if language == "eql" else "elastic-lucene")
        mapping: str = s.elastic_mapping_for(idx)
    else:
        backend, mapping = "splunk", "sysmon"  # Splunk's Windows add-ons keep the raw event field names
    slice_s = s.siem_slice_hours * 3600 or None

    def engine(batch: list[RuleInfo]) -> HuntOutcome:
        return run_siem_hunt(batch, client, backend=backend, index=idx, start=start, end=end, sample=sample,
                             mapping=mapping, concurrency=s.siem_concurrency, slice_s=slice_s,
                             rate_limit_budget_s=s.siem_rate_limit_budget_s)

    return engine, f"{client.system}:{client.base_url}/{idx}"


def run_hunt(
    *,
    selection: HuntSelection | None = None,
    dco: str | None = None,
    source: DataSourceKind = "local",
    data: Sequence[Path] = (),
    rules_path: Sequence[Path] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    index: str | None = None,
    elastic_language: Literal["lucene", "eql"] = "lucene",
    sample: int = 20,
    workers: int | None = None,
    hunt_key: str | None = None,
    batch_size: int = 0,
    attack_source: str | None = None,
    actor: str = "dcoflow",
    registry: ConnectorRegistry | None = None,
    progress: Callable[[int], None] | None = None,
) -> HuntResult:
    """Hunt with Sigma rules over local telemetry or a SIEM; with a DCO, record the evidence.

    ``selection`` None means the DCO's hunt plan. ``data`` defaults to ``DCO_TELEMETRY_DIR`` and ``rules_path``
    to the content folder's ``sigma/rules``. The SIEM window is ``start``–``end``, by default the DCO's window,
    else the last 24 hours. ``batch_size`` 0: all rules at once on local files, ``SIEM_BATCH`` on a SIEM.
    ``progress`` gets the number of events read so far (local telemetry).
    """
    registry = registry or ConnectorRegistry.from_settings()
    settings = registry.settings
    outcomes: list[HuntOutcome] = []
    unreadable: list[SkippedRule] = []

    def engine_for(start: datetime, end: datetime, stack: ExitStack) -> tuple[Engine, str]:
        if source != "local":
            client = registry.siem(source)
            stack.callback(client.close)
            engine, name = _siem_engine(registry, client, source, index, elastic_language, start, end, sample)
        else:
            from dcoflow.tasks.conduct.local_hunt import hunt_rules

            files = list(data) or settings.telemetry_paths()  # an error when unset, never the current folder

            def engine(batch: list[RuleInfo]) -> HuntOutcome:
                return hunt_rules(batch, files, sample=sample, progress=progress, workers=workers,
                                  max_member_bytes=settings.max_archive_member_bytes)

            name = ", ".join(str(p) for p in files)

        def recorded(batch: list[RuleInfo]) -> HuntOutcome:
            outcome = engine(batch)
            if not outcomes:  # unreadable rule files are reported once, with the first batch
                outcome.skipped = [*unreadable, *outcome.skipped]
            outcomes.append(outcome)
            return outcome

        return recorded, name

    def rules_for(chosen: HuntSelection) -> list[RuleInfo]:
        rules, bad = select_rules(list(rules_path) or [settings.content_path("sigma") / "rules"], chosen)
        unreadable.extend(bad)
        return rules

    with ExitStack() as stack:
        if dco is None:
            if selection is None:
                raise ValidationError("give techniques, rule ids or a DCO with a hunt plan", object="hunt")
            end = end or datetime.now(UTC)
            rules = rules_for(selection)
            engine, _name = engine_for(start or end - timedelta(hours=24), end, stack)
            outcome = engine(rules)
            return HuntResult(outcome, summarize_outcome(outcome))
        siem = source != "local"  # a local hunt reads whole files: no window limits it, none is stored
        with session_scope() as s:  # the DCO, its gate and plan, and the run, read once
            op = get_operation(s, dco)
            require_conduct(op.id, op.state, op.dco.window, datetime.now(UTC), "hunt")  # before any query runs
            if op.dco.window is not None and start is None and end is None:
                start, end = op.dco.window.start, op.dco.window.end
            end = end or datetime.now(UTC)
            start = start or end - timedelta(hours=24)
            rules = rules_for(selection or plan_selection(s, op))
            engine, name = engine_for(start, end, stack)
            key = hunt_key or derive_hunt_key([r.rule_id for r in rules], name, start if siem else None,
                                              end if siem else None)
            window: tuple[datetime | None, datetime | None] = (start, end) if siem else (None, None)
            opened = open_hunt(s, op.id, rules, hunt_key=key, source=name, start=window[0], end=window[1])
        from dcoflow.connectors.attack import load_catalog

        run = record_batches(opened, engine, catalog=load_catalog(attack_source),
                             batch_size=batch_size or (SIEM_BATCH if siem else len(rules)), start=window[0],
                             end=window[1], actor=actor)
        return HuntResult(merge_outcomes(name, outcomes), hunt_summary(run), op.id)


def hunt_runs(dco: str | None = None) -> list[HuntRun]:
    """Hunt runs (``dco hunt runs``), of one DCO or all, oldest first."""
    with session_scope() as s:
        return list_hunt_runs(s, get_operation(s, dco).id if dco else None)


def conducting_hunt_dcos() -> list[str]:
    """The DCOs the hunt sweep covers: every hunting DCO in state conducting."""
    with session_scope() as s:
        return [op.id for op in list_operations(s, [DcoState.CONDUCTING]) if op.type.hunts]


def sweep_window(lookback_hours: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The sweep's window: ``lookback_hours`` ending at the current full hour, so a re-run within the same
    hour resumes the same hunt runs."""
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=lookback_hours), end


run_hunt_task = task(name="hunt", cache_policy=NO_CACHE)(run_hunt)
