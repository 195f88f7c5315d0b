"""Hunt with Sigma rules over local telemetry files (the local engine).

``run_local_hunt`` indexes the rules, selects them, compiles the selection
(``models.sigma.compiler``), streams the events once (``connectors.telemetry``) and tests
each event only against the rules whose logsource can apply to it. Rules that cannot be
parsed or evaluated come back as ``SkippedRule`` with file and reason; rules that saw no
event of their logsource come back in ``no_logsource`` (visibility gaps).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prefect import task

from connectors.content.sigma_rules import load_rule_index
from connectors.telemetry import iter_events
from core.errors import BatchReport
from core.settings import get_settings
from models.hunting import HuntOutcome, HuntSelection, RuleMatch, SkippedRule
from models.sigma.compiler import CompiledRule, RuleCompileError, RuleSet, compile_rule

_PROGRESS_EVERY = 10_000


def _as_paths(value: Path | Sequence[Path]) -> list[Path]:
    return [Path(value)] if isinstance(value, Path | str) else [Path(v) for v in value]


def compile_selection(
    rules: Path | Sequence[Path], selection: HuntSelection | None,
) -> tuple[list[CompiledRule], list[SkippedRule], BatchReport]:
    """Selected rules compiled for local evaluation, the ones skipped with reasons, and the index report."""
    index = load_rule_index(_as_paths(rules))
    compiled: list[CompiledRule] = []
    skipped = [SkippedRule(path=b.location, rule_id=None, reason=b.reason) for b in index.report.bad]
    for info in index.select(selection):
        try:
            compiled.append(compile_rule(info))
        except RuleCompileError as exc:
            skipped.append(SkippedRule(path=info.path, rule_id=info.rule_id, reason=str(exc)))
    return compiled, skipped, index.report


def run_local_hunt(
    rules: Path | Sequence[Path],
    data: Path | Sequence[Path],
    selection: HuntSelection | None = None,
    *,
    sample: int = 20,
    progress: Callable[[int], None] | None = None,
) -> HuntOutcome:
    """Run the selected Sigma rules over every telemetry file below ``data``.

    ``sample`` caps the events kept per matching rule (counts are always complete);
    ``progress`` is called with the number of events read so far, every 10,000 events and
    at the end. Missing rule or data paths raise ``ContentError`` naming the path.
    """
    started = time.perf_counter()
    data_paths = _as_paths(data)
    compiled, skipped, _ = compile_selection(rules, selection)
    ruleset = RuleSet(compiled)
    counts = [0] * len(compiled)
    samples: list[list[dict[str, Any]]] = [[] for _ in compiled]
    seen_channels: set[tuple[str, str]] = set()
    reports: list[BatchReport] = []
    events = 0
    max_member = get_settings().max_archive_member_bytes
    for event in iter_events(data_paths, max_member_bytes=max_member, reports=reports):
        events += 1
        channel = event.get("Channel")
        if channel is not None:
            seen_channels.add((str(channel).lower(), str(event.get("EventID", "")).lower()))
        for i in ruleset.match(event):
            counts[i] += 1
            if len(samples[i]) < sample:
                samples[i].append(event)
        if progress is not None and events % _PROGRESS_EVERY == 0:
            progress(events)
    if progress is not None:
        progress(events)

    channels_seen = {c for c, _ in seen_channels}
    no_logsource = []
    for cr in compiled:
        saw = any(
            ch in channels_seen and (ids is None or any((ch, e) in seen_channels for e in ids))
            for variant, _, ids in cr.codes for ch in variant.channels
        )
        if not saw:
            no_logsource.append(cr.info)
    matches = [RuleMatch(rule=cr.info, count=counts[i], events=samples[i])
               for i, cr in enumerate(compiled) if counts[i]]
    matches.sort(key=lambda m: (-m.count, m.rule.title))
    return HuntOutcome(
        source=", ".join(str(p) for p in data_paths),
        rules_run=[cr.info for cr in compiled],
        matches=matches,
        skipped=skipped,
        no_logsource=no_logsource,
        events_read=events,
        reports=reports,
        duration_s=time.perf_counter() - started,
    )


run_local_hunt_task = task(name="local-hunt", retries=1)(run_local_hunt)
