"""Reference Sigma evaluation the Zircolite way: events in an in-memory SQLite table, one SQL
query per rule as converted by pySigma's sqlite backend (sysmon + windows pipelines).

Conventions copied from Zircolite so the comparison is fair: columns are case-insensitive
(``COLLATE NOCASE``, SQLite column names are case-insensitive anyway), a Python ``REGEXP``
function (``re.search``), decimal strings stored as integers so numeric comparisons work.
Rules of a category the Windows audit pipeline maps (process_creation → 4688, registry →
4657) are converted a second time with that pipeline and the two result sets are united,
exactly as the local engine's two variants.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sigma.backends.sqlite.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.pipelines.sysmon.sysmon import sysmon_pipeline
from sigma.pipelines.windows.windows import windows_audit_pipeline, windows_logsource_pipeline

from dcoflow.models.hunting import RuleInfo
from dcoflow.models.sigma.logsource import _AUDIT_EVENTS

_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,17})$")


@dataclass
class ReferenceRule:
    info: RuleInfo
    queries: list[str] = field(default_factory=list)
    error: str | None = None


def _convert(text: str, audit: bool) -> list[str]:
    # a fresh collection per conversion: pySigma pipelines mutate the rule objects in place
    pipeline = (windows_audit_pipeline() if audit else sysmon_pipeline()) + windows_logsource_pipeline()
    out = sqliteBackend(pipeline).convert(  # type: ignore[no-untyped-call]  # pySigma backend is untyped
        SigmaCollection.from_yaml(text))
    return [str(q) for q in out]


def convert_rules(infos: Iterable[RuleInfo]) -> list[ReferenceRule]:
    rules = []
    for info in infos:
        ref = ReferenceRule(info)
        try:
            ref.queries = _convert(info.yaml, audit=False)
        except Exception as exc:
            ref.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if ref.error is None and info.logsource.get("category", "") in _AUDIT_EVENTS \
                and info.logsource.get("product") == "windows":
            # the audit variant may not express the rule (e.g. 4657 lacks User): Sysmon only then
            with contextlib.suppress(Exception):
                ref.queries += _convert(info.yaml, audit=True)
        rules.append(ref)
    return rules


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str, value: Any) -> bool:
    if value is None:
        return False
    return _regex(pattern).search(str(value)) is not None


def _cell(value: Any) -> Any:
    if isinstance(value, str) and _DECIMAL.match(value):
        return int(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        import orjson
        return orjson.dumps(value).decode()
    return value


def build_table(events: Sequence[dict[str, Any]]) -> sqlite3.Connection:
    """An in-memory ``logs`` table with one row per event (``row_id`` = index in ``events``)."""
    columns: dict[str, str] = {}
    for ev in events:
        for k in ev:
            columns.setdefault(k.lower(), k)
    names = list(columns.values())
    conn = sqlite3.connect(":memory:")
    conn.create_function("REGEXP", 2, _regexp, deterministic=True)
    cols = ", ".join(f'"{n}" COLLATE NOCASE' for n in names)
    conn.execute(f"CREATE TABLE logs (row_id INTEGER PRIMARY KEY, {cols})")
    index = {k: i for i, k in enumerate(columns)}
    placeholders = ", ".join("?" * (len(names) + 1))
    rows = []
    for rid, ev in enumerate(events):
        row: list[Any] = [None] * (len(names) + 1)
        row[0] = rid
        for k, v in ev.items():
            row[index[k.lower()] + 1] = _cell(v)
        rows.append(row)
    conn.executemany(f"INSERT INTO logs VALUES ({placeholders})", rows)
    return conn


_NO_COLUMN = re.compile(r"no such column: (.+)$")


def run_rule(conn: sqlite3.Connection, rule: ReferenceRule) -> set[int]:
    """Row ids matched by any of the rule's queries; columns the corpus lacks are added as NULL."""
    hits: set[int] = set()
    for q in rule.queries:
        sql = q.replace("SELECT * FROM logs", "SELECT row_id FROM logs", 1)
        for _ in range(50):
            try:
                hits.update(r[0] for r in conn.execute(sql))
                break
            except sqlite3.OperationalError as exc:
                m = _NO_COLUMN.search(str(exc))
                if not m:
                    raise
                conn.execute(f'ALTER TABLE logs ADD COLUMN "{m.group(1)}" COLLATE NOCASE')
    return hits
