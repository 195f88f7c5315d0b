"""Reading Sigma rule files: a fast metadata index over one or more rule folders.

The index holds what planning and selection need (id, title, level, status, tags, ATT&CK
technique ids, logsource, the YAML text) for every ``*.yml``/``*.yaml`` file below the given
paths. It parses with libyaml (``CSafeLoader``) only; the full pySigma object model is built
later, and only for the rules a hunt selects (``dcoflow.models.sigma``). Parsed files are cached per
process keyed by (path, mtime, size), so re-indexing an unchanged checkout costs one ``stat``
per file.

Technique ids come from tags ``attack.t1059.001`` → ``T1059.001`` as tagged: they are not
resolved against an ATT&CK release here (the Sigma rules already use v19 ids the bundled
release may not know; the catalog decides what to do with those).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from dcoflow.core.errors import BatchReport, ContentError
from dcoflow.models.attack.newer_ids import newer_ids_for
from dcoflow.models.hunting import HuntSelection, RuleInfo
from dcoflow.models.strict_yaml import load_yaml_all, yaml_problem

RULE_SUFFIXES = (".yml", ".yaml")
_TECHNIQUE_TAG = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)
_LOGSOURCE_KEYS = ("product", "category", "service")

_cache_lock = threading.Lock()
# path -> ((mtime_ns, size), RuleInfo or the reason it could not be read)
_file_cache: dict[str, tuple[tuple[int, int], RuleInfo | str]] = {}


def technique_ids_from_tags(tags: Sequence[str]) -> list[str]:
    """``attack.t1003.001`` → ``T1003.001``; other tags (tactics, groups, cve…) are ignored."""
    out: list[str] = []
    for tag in tags:
        m = _TECHNIQUE_TAG.match(tag.strip())
        if m:
            tid = m.group(1).upper()
            if tid not in out:
                out.append(tid)
    return out


def technique_matches(wanted: str, technique_id: str) -> bool:
    """Exact id, or a sub-technique of a wanted parent (T1003 selects T1003.001)."""
    wanted = wanted.strip().upper()
    return technique_id == wanted or ("." not in wanted and technique_id.startswith(wanted + "."))


def rule_info_from_mapping(doc: Any, path: str, text: str) -> RuleInfo:
    """Build a ``RuleInfo`` from a parsed rule document; raises ``ValueError`` naming what is missing."""
    if not isinstance(doc, dict):
        raise ValueError("not a YAML mapping")
    rule_id = doc.get("id")
    title = doc.get("title")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise ValueError("rule has no 'id'")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("rule has no 'title'")
    if "detection" not in doc:
        raise ValueError("rule has no 'detection' section")
    raw_tags = doc.get("tags") or []
    if not isinstance(raw_tags, list):
        raise ValueError("'tags' is not a list")
    tags = [str(t) for t in raw_tags]
    raw_ls = doc.get("logsource") or {}
    if not isinstance(raw_ls, dict):
        raise ValueError("'logsource' is not a mapping")
    logsource = {k: str(raw_ls[k]) for k in _LOGSOURCE_KEYS if raw_ls.get(k) is not None}
    level = doc.get("level")
    status = doc.get("status")
    return RuleInfo(
        rule_id=rule_id.strip(),
        title=title.strip(),
        path=path,
        level=str(level) if level is not None else None,
        status=str(status) if status is not None else None,
        tags=tags,
        technique_ids=technique_ids_from_tags(tags),
        logsource=logsource,
        yaml=text,
    )


def _read_rule(path: Path) -> RuleInfo | str:
    """One rule file → ``RuleInfo``, or the reason it could not be used (cached by mtime+size)."""
    key = str(path)
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot stat: {exc.strerror or exc}"
    stamp = (st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _file_cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    result: RuleInfo | str
    try:
        text = path.read_text(encoding="utf-8")
        docs = load_yaml_all(text)
        docs = [d for d in docs if d is not None]
        if len(docs) != 1:
            raise ValueError(f"expected one YAML document, found {len(docs)}")
        result = rule_info_from_mapping(docs[0], key, text)
    except OSError as exc:
        result = f"cannot read: {exc.strerror or exc}"
    except UnicodeDecodeError as exc:
        result = f"not UTF-8: {exc.reason} at byte {exc.start}"
    except yaml.YAMLError as exc:
        result = f"invalid YAML: {yaml_problem(exc)}"
    except ValueError as exc:
        result = str(exc)
    with _cache_lock:
        _file_cache[key] = (stamp, result)
    return result


def iter_rule_files(paths: Path | Sequence[Path]) -> Iterator[Path]:
    """Every rule file below ``paths`` (files are taken as given), in a stable order.

    A missing path is an error naming it, not an empty result.
    """
    for p in [paths] if isinstance(paths, Path | str) else paths:
        path = Path(p)
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(f for f in path.rglob("*") if f.suffix.lower() in RULE_SUFFIXES and f.is_file())
        else:
            raise ContentError("rule path does not exist", system="sigma", object=str(path),
                               hint="pass a Sigma rule file or a folder of rules")


@dataclass(slots=True)
class RuleIndex:
    """Metadata of every readable rule below some paths, plus the files that could not be read."""

    rules: list[RuleInfo]
    report: BatchReport
    _by_id: dict[str, RuleInfo] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for r in self.rules:
            self._by_id.setdefault(r.rule_id, r)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> RuleInfo | None:
        return self._by_id.get(rule_id)

    def technique_ids(self) -> set[str]:
        return {t for r in self.rules for t in r.technique_ids}

    def for_technique(self, technique_id: str) -> list[RuleInfo]:
        """Rules tagged with the technique, or (for a parent id) any of its sub-techniques."""
        return [r for r in self.rules if any(technique_matches(technique_id, t) for t in r.technique_ids)]

    def select(self, selection: HuntSelection | None) -> list[RuleInfo]:
        """Rules matching every given criterion of ``selection`` (any value within one criterion)."""
        if selection is None:
            return list(self.rules)
        return [r for r in self.rules if rule_selected(r, selection)]


def _lower_set(values: Sequence[str]) -> set[str]:
    return {v.strip().lower() for v in values}


@lru_cache(maxsize=64)
def _newer_ids(techniques: tuple[str, ...]) -> frozenset[str]:
    """The newer-release ids (v19's T1685 for T1562.001) of the selected techniques: SigmaHQ tags with them."""
    return frozenset(n for t in techniques for n in newer_ids_for(t))


def rule_selected(rule: RuleInfo, sel: HuntSelection) -> bool:
    if sel.rule_ids and rule.rule_id not in {i.strip() for i in sel.rule_ids}:
        return False
    if sel.techniques and not (any(technique_matches(w, t) for w in sel.techniques for t in rule.technique_ids)
                               or _newer_ids(tuple(sel.techniques)).intersection(rule.technique_ids)):
        return False
    if sel.tags and not _lower_set(sel.tags) & {t.lower() for t in rule.tags}:
        return False
    for wanted, key in ((sel.products, "product"), (sel.categories, "category"), (sel.services, "service")):
        if wanted and rule.logsource.get(key, "").lower() not in _lower_set(wanted):
            return False
    if sel.statuses and (rule.status or "").lower() not in _lower_set(sel.statuses):
        return False
    return not (sel.levels and (rule.level or "").lower() not in _lower_set(sel.levels))


def load_rule_index(paths: Path | Sequence[Path]) -> RuleIndex:
    """Index every Sigma rule file below ``paths`` (files or folders).

    Unreadable or invalid files are reported in ``RuleIndex.report`` (location = file path)
    and left out; a path that does not exist raises ``ContentError`` naming it. A rule whose id
    another file already has is reported and left out too: results, sightings and indicators are
    keyed by rule id, so two rules sharing one would each be credited with the other's hits.
    """
    path_list = [Path(paths)] if isinstance(paths, Path | str) else [Path(p) for p in paths]
    report = BatchReport(source=", ".join(str(p) for p in path_list))
    rules: list[RuleInfo] = []
    first_path: dict[str, str] = {}
    for f in iter_rule_files(path_list):
        report.read += 1
        got = _read_rule(f)
        if isinstance(got, str):
            report.skip(str(f), got)
        elif got.rule_id in first_path:
            report.skip(str(f), f"duplicate rule id {got.rule_id} (first in {first_path[got.rule_id]}); left out")
        else:
            first_path[got.rule_id] = got.path
            rules.append(got)
            report.kept += 1
    return RuleIndex(rules=rules, report=report)
