"""Hunt with Sigma rules over local telemetry files (the local engine).

``run_local_hunt`` indexes the rules, selects them, compiles the selection
(``dcoflow.models.sigma.compiler``), streams the events once (``dcoflow.connectors.telemetry``) and tests
each event only against the rules whose logsource can apply to it. Rules that cannot be
parsed or evaluated come back as ``SkippedRule`` with file and reason; rules that saw no
event of their logsource come back in ``no_logsource`` (visibility gaps).

Per event the hunt builds one lower-case-keyed view of the record (``match_view``) and
normalises the record fully only when a matching rule still keeps samples.

The unit of work is one input file (``hunt_file``). With ``workers`` > 1 the files are shared
by a pool of forked processes that inherit the compiled rules (nothing is recompiled or
pickled on the way in); each returns its file's counts, capped samples, seen channels and
``BatchReport``, and the merge keeps, per rule, the first ``sample`` events in file order, so
the outcome is the same as with one worker. A file whose work fails, or whose worker process
dies, is reported in its ``BatchReport`` and the other files are still hunted.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from dcoflow.connectors.content.sigma_rules import load_rule_index
from dcoflow.connectors.telemetry import iter_data_files, iter_file_records, match_view, normalise_event
from dcoflow.core.errors import BatchReport
from dcoflow.core.settings import Settings
from dcoflow.models.hunting import HuntOutcome, HuntSelection, RuleInfo, RuleMatch, SkippedRule
from dcoflow.models.sigma.compiler import CompiledRule, GroupFn, RuleCompileError, RuleSet, compile_rule, dispatch_key

_PROGRESS_EVERY = 10_000
# Below this much input a forked pool costs more than it saves.
_MIN_PARALLEL_BYTES = 256 * 1024
# DCO_MAX_ARCHIVE_MEMBER_BYTES' default; use cases pass the configured value (settings are read at the edges)
DEFAULT_MAX_MEMBER_BYTES: int = Settings.model_fields["max_archive_member_bytes"].default


def _as_paths(value: Path | Sequence[Path]) -> list[Path]:
    return [Path(value)] if isinstance(value, Path | str) else [Path(v) for v in value]


def compile_selection(
    rules: Path | Sequence[Path], selection: HuntSelection | None,
) -> tuple[list[CompiledRule], list[SkippedRule], BatchReport]:
    """Selected rules compiled for local evaluation, the ones skipped with reasons, and the index report."""
    index = load_rule_index(_as_paths(rules))
    compiled, skipped = compile_rules(index.select(selection))
    unreadable = [SkippedRule(path=b.location, rule_id=None, reason=b.reason) for b in index.report.bad]
    return compiled, unreadable + skipped, index.report


def compile_rules(rules: Sequence[RuleInfo]) -> tuple[list[CompiledRule], list[SkippedRule]]:
    """Rules compiled for local evaluation, and the ones that cannot be with the reason."""
    compiled: list[CompiledRule] = []
    skipped: list[SkippedRule] = []
    for info in rules:
        try:
            compiled.append(compile_rule(info))
        except RuleCompileError as exc:
            skipped.append(SkippedRule(path=info.path, rule_id=info.rule_id, reason=str(exc)))
    return compiled, skipped


@dataclass(slots=True)
class FileHunt:
    """What hunting one file found: per-rule counts and samples (rule index → …), seen (channel, event id)."""

    report: BatchReport
    events: int = 0
    counts: dict[int, int] = field(default_factory=dict)
    samples: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)


def hunt_file(ruleset: RuleSet, path: Path, *, sample: int, max_member_bytes: int,
              progress: Callable[[int], None] | None = None) -> FileHunt:
    """Match every record of one file; an unexpected failure is recorded in the file's report."""
    out = FileHunt(BatchReport(source=str(path)))
    counts, samples = out.counts, out.samples
    # per-file dispatch cache, keyed by the raw (channel, event id) values and the id's type (True == 1
    # and 1.0 == 1 in a dict, but they are the texts "true", "1.0" and "1" to the rules); its keys are what was seen
    groups: dict[tuple[Any, Any, type], tuple[tuple[str, str] | None, GroupFn | None]] = {}
    try:
        for raw in iter_file_records(path, out.report, max_member_bytes=max_member_bytes):
            out.events += 1
            view = match_view(raw)
            eid = view.get("eventid")
            key = (view.get("channel"), eid, eid.__class__)
            try:
                found = groups.get(key)
            except TypeError:  # an unhashable channel or event id (a JSON list): dispatch on its text
                key = (str(key[0]), str(key[1]), str)
                found = groups.get(key)
            if found is None:
                dk = dispatch_key(view)
                found = groups[key] = (dk, None if dk is None else ruleset.group_for(*dk))
            fn = found[1]
            if fn is not None:
                hits = fn(view)
                if hits:
                    event: dict[str, Any] | None = None
                    for i in (set(hits) if len(hits) > 1 else hits):
                        counts[i] = counts.get(i, 0) + 1
                        kept = samples.get(i)
                        if kept is None:
                            kept = samples[i] = []
                        if len(kept) < sample:
                            if event is None:
                                event = normalise_event(raw)
                            kept.append(event)
            if progress is not None and out.events % _PROGRESS_EVERY == 0:
                progress(out.events)
    except Exception as exc:  # a reader or rule bug must not lose the other files' results
        out.report.skip(str(path), f"hunt failed after {out.events} records: {type(exc).__name__}: {exc}")
    out.seen = {dk for dk, _ in groups.values() if dk is not None}
    return out


# -- worker processes -----------------------------------------------------------------------------

_WORKER: list[tuple[RuleSet, int, int]] = []  # filled in each forked worker by its initializer


def _init_worker(ruleset: RuleSet, sample: int, max_member_bytes: int) -> None:
    _WORKER[:] = [(ruleset, sample, max_member_bytes)]  # inherited through fork, never pickled


def _work(path: Path) -> FileHunt:
    ruleset, sample, max_member = _WORKER[0]
    return hunt_file(ruleset, path, sample=sample, max_member_bytes=max_member)


def cores_available() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow), else the count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not every platform has affinity masks
        return os.cpu_count() or 1


def default_workers(files: Sequence[Path]) -> int:
    """min(cores available, files); 1 when fork is unavailable or the input is too small to gain from a pool."""
    if "fork" not in multiprocessing.get_all_start_methods() or len(files) < 2:
        return 1
    total = 0
    for f in files:
        try:
            total += f.stat().st_size
        except OSError:
            continue
    if total < _MIN_PARALLEL_BYTES:
        return 1
    return max(1, min(cores_available(), len(files)))


def _hunt_in_pool(ruleset: RuleSet, files: Sequence[Path], workers: int, sample: int, max_member: int,
                  done: Callable[[int, FileHunt], None]) -> None:
    """Hunt ``files`` (by position) in forked workers, calling ``done`` as each finishes.

    Largest files go first so the workers finish together. When a worker process dies, every
    unfinished file is retried alone in a fresh worker, so only the file that kills its worker
    is lost (and reported).
    """
    ctx = multiprocessing.get_context("fork")
    # Objects that exist now are shared copy-on-write with the workers; keep the collector from
    # walking them there (which would touch, and so copy, every page of the compiled rules).
    gc.freeze()
    try:
        _run_pool(ctx, ruleset, files, workers, sample, max_member, done)
    finally:
        gc.unfreeze()


def _failed(path: Path, reason: str) -> FileHunt:
    report = BatchReport(source=str(path))
    report.skip(str(path), reason)
    return FileHunt(report)


def _run_pool(ctx: BaseContext, ruleset: RuleSet, files: Sequence[Path], workers: int, sample: int, max_member: int,
              done: Callable[[int, FileHunt], None]) -> None:
    sizes = []
    for i, f in enumerate(files):
        try:
            sizes.append((-f.stat().st_size, i))
        except OSError:
            sizes.append((0, i))
    pending = [i for _, i in sorted(sizes)]
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(ruleset, sample, max_member)) as pool:
        futures: dict[Future[FileHunt], int] = {pool.submit(_work, files[i]): i for i in pending}
        broken: list[int] = []
        for fut in as_completed(list(futures)):  # results are merged and dropped as they come
            i = futures.pop(fut)
            try:
                found = fut.result()
            except BrokenProcessPool:
                broken.append(i)
                continue
            except Exception as exc:  # e.g. a result that cannot be sent back: this file only
                found = _failed(files[i], f"hunt worker failed: {type(exc).__name__}: {exc}")
            done(i, found)
        broken.sort()
    for i in broken:
        with ProcessPoolExecutor(1, mp_context=ctx, initializer=_init_worker,
                                 initargs=(ruleset, sample, max_member)) as alone:
            try:
                done(i, alone.submit(_work, files[i]).result())
            except BrokenProcessPool as exc:
                done(i, _failed(files[i], f"hunt worker process died while reading this file: {exc}"))
            except Exception as exc:
                done(i, _failed(files[i], f"hunt worker failed: {type(exc).__name__}: {exc}"))


def run_local_hunt(
    rules: Path | Sequence[Path],
    data: Path | Sequence[Path],
    selection: HuntSelection | None = None,
    *,
    sample: int = 20,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> HuntOutcome:
    """Run the selected Sigma rules over every telemetry file below ``data``.

    ``sample`` caps the events kept per matching rule (counts are always complete);
    ``progress`` is called with the number of events read so far (every 10,000 events with one
    worker, after each file with several) and at the end. ``workers`` is the number of processes
    sharing the files (default ``default_workers``); the outcome does not depend on it. Missing
    rule or data paths raise ``ContentError`` naming the path.
    """
    started = time.perf_counter()
    data_paths = _as_paths(data)
    files = list(iter_data_files(data_paths))
    compiled, skipped, _ = compile_selection(rules, selection)
    outcome = hunt_compiled(RuleSet(compiled), files, sample=sample, progress=progress, workers=workers,
                            max_member_bytes=max_member_bytes)
    outcome.source = ", ".join(str(p) for p in data_paths)
    outcome.skipped = skipped
    outcome.duration_s = time.perf_counter() - started
    return outcome


def hunt_rules(
    rules: Sequence[RuleInfo],
    data: Path | Sequence[Path],
    *,
    sample: int = 20,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> HuntOutcome:
    """``run_local_hunt`` for rules already read and selected (a hunt's batch of its selection)."""
    started = time.perf_counter()
    data_paths = _as_paths(data)
    compiled, skipped = compile_rules(rules)
    outcome = hunt_compiled(RuleSet(compiled), list(iter_data_files(data_paths)), sample=sample, progress=progress,
                            workers=workers, max_member_bytes=max_member_bytes)
    outcome.source = ", ".join(str(p) for p in data_paths)
    outcome.skipped = skipped
    outcome.duration_s = time.perf_counter() - started
    return outcome


def hunt_compiled(
    ruleset: RuleSet,
    files: Sequence[Path],
    *,
    sample: int = 20,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> HuntOutcome:
    """Hunt already compiled rules over ``files`` (the read + match part of ``run_local_hunt``)."""
    started = time.perf_counter()
    compiled = ruleset.rules
    n_workers = default_workers(files) if workers is None else max(1, min(workers, len(files)))
    if "fork" not in multiprocessing.get_all_start_methods():
        n_workers = 1
    max_member = max_member_bytes
    counts = [0] * len(compiled)
    # rule → [(file position, events)], trimmed to ``sample`` events of the lowest positions, so
    # files finishing out of order keep the same samples as one in-order pass and memory stays capped
    kept: dict[int, list[tuple[int, list[dict[str, Any]]]]] = {}
    seen: set[tuple[str, str]] = set()
    reports: list[BatchReport | None] = [None] * len(files)
    events = 0

    def done(pos: int, found: FileHunt) -> None:
        nonlocal events
        events += found.events
        reports[pos] = found.report
        seen.update(found.seen)
        for i, c in found.counts.items():
            counts[i] += c
        for i, evs in found.samples.items():
            parts = kept.setdefault(i, [])
            parts.append((pos, evs))
            parts.sort(key=lambda p: p[0])
            room = sample
            for j, (p, chunk) in enumerate(parts):
                if room <= 0:
                    del parts[j:]
                    break
                if len(chunk) > room:
                    parts[j] = (p, chunk[:room])
                room -= len(parts[j][1])
        if n_workers > 1 and progress is not None:
            progress(events)

    if n_workers == 1:
        base = 0
        for pos, f in enumerate(files):
            tick = None if progress is None else (lambda n, b=base: progress(b + n))
            found = hunt_file(ruleset, f, sample=sample, max_member_bytes=max_member, progress=tick)
            done(pos, found)
            base += found.events
    else:
        _hunt_in_pool(ruleset, files, n_workers, sample, max_member, done)
    if progress is not None:
        progress(events)

    channels_seen = {c for c, _ in seen}
    no_logsource = []
    for cr in compiled:
        saw = any(
            ch in channels_seen and (ids is None or any((ch, e) in seen for e in ids))
            for variant, _, ids in cr.codes for ch in variant.channels
        )
        if not saw:
            no_logsource.append(cr.info)
    matches = [RuleMatch(rule=cr.info, count=counts[i], events=[e for _, chunk in kept.get(i, []) for e in chunk])
               for i, cr in enumerate(compiled) if counts[i]]
    matches.sort(key=lambda m: (-m.count, m.rule.title))
    return HuntOutcome(
        source=", ".join(str(f) for f in files),
        rules_run=[cr.info for cr in compiled],
        matches=matches,
        no_logsource=no_logsource,
        events_read=events,
        reports=[r for r in reports if r is not None],
        duration_s=time.perf_counter() - started,
    )
