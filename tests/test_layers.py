"""The layers depend one way, flows → tasks → connectors → models → core; SQL and sessions sit where the
architecture says; and every module imports alone.

``lint-imports`` checks the layering (its contracts are in pyproject.toml). The SQL check reads each module's
code: queries (``select(``/``update(``… from SQLModel or SQLAlchemy, ``.exec(``/``.execute(``) only in
``models/repository/`` and ``core/``; sessions (``session_scope``, ``Session(``) only in the use-case functions
in ``tasks/`` and in ``core/``. The import check imports every module first, in a fresh ``dcoflow`` namespace, so
an import loop that only bites when one module is imported before another shows up.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "models", "connectors", "tasks", "flows")
QUERY_BUILDERS = {"select", "update", "delete", "insert", "text"}  # as imported from sqlmodel / sqlalchemy
SESSION_OPENERS = {"session_scope", "Session"}
QUERIES_MAY_LIVE = ("models/repository/", "core/")
SESSIONS_MAY_LIVE = ("tasks/", "core/")

# Known offenders while issue 10's moves are under way: file → what it still does and where that goes. Moving a
# use case out shrinks this list; the test fails on an entry whose file no longer offends, so delete the line
# with the move. Nothing may be added here.
STILL_QUERIES = {
}
STILL_OPENS_SESSIONS = {
}


def test_import_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts: the layering, and no Prefect below tasks."""
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports; "
         "raise SystemExit(lint_imports(no_cache=True, no_logo=True))"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    missing = "No module named 'importlinter'" in done.stderr
    hint = "\n(import-linter is in the test extra: pip install -e '.[test]')" if missing else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:] + hint


def _sql_uses(tree: ast.AST) -> tuple[list[str], list[str], list[str]]:
    """(queries, sessions opened, SQL names imported from SQLModel/SQLAlchemy) in a module, as "line: what"."""
    imported: dict[str, str] = {}  # local name → where it was imported
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {"sqlmodel", "sqlalchemy"}:
            imported |= {alias.asname or alias.name: f"{node.lineno}: imports {alias.name}" for alias in node.names
                         if alias.name in QUERY_BUILDERS | {"Session"}}
    queries: list[str] = []
    sessions: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if isinstance(func, ast.Name) and name in imported and name != "Session":
            queries.append(f"{node.lineno}: {name}(")
        elif isinstance(func, ast.Attribute) and name in {"exec", "execute"}:
            queries.append(f"{node.lineno}: .{name}(")
        elif name == "session_scope" or (name == "Session" and name in imported):
            sessions.append(f"{node.lineno}: {name}(")
    return sorted(queries), sorted(sessions), sorted(imported.values())


def test_sql_in_the_repository_sessions_in_tasks() -> None:
    """Queries only in models/repository/ (and core); sessions opened only by the use cases in tasks/ (and core);
    the rest of models/ and connectors/ do not even import SQLModel's Session or query builders. What still breaks
    that is in STILL_QUERIES / STILL_OPENS_SESSIONS, which only shrink."""
    wrong: list[str] = []
    offends: dict[str, set[str]] = {"queries": set(), "sessions": set()}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("core/migrations/"):
                continue
            queries, sessions, imported = _sql_uses(ast.parse(path.read_text(encoding="utf-8")))
            if queries and not rel.startswith(QUERIES_MAY_LIVE):
                offends["queries"].add(rel)
                if rel not in STILL_QUERIES:
                    wrong += [f"{rel}:{q} — a query belongs in models/repository/" for q in queries]
            if sessions and not rel.startswith(SESSIONS_MAY_LIVE):
                offends["sessions"].add(rel)
                if rel not in STILL_OPENS_SESSIONS:
                    wrong += [f"{rel}:{s} — the use case in tasks/ opens the session" for s in sessions]
            if layer in {"models", "connectors"} and not rel.startswith(QUERIES_MAY_LIVE):
                wrong += [f"{rel}:{i} — models and connectors do no database I/O" for i in imported]
    wrong += [f"{rel}: queries no more; delete it from STILL_QUERIES"
              for rel in set(STILL_QUERIES) - offends["queries"]]
    wrong += [f"{rel}: opens no session now; delete it from STILL_OPENS_SESSIONS"
              for rel in set(STILL_OPENS_SESSIONS) - offends["sessions"]]
    assert not wrong, "\n".join(sorted(wrong))


def test_sql_check_sees_queries_and_sessions() -> None:
    queries, sessions, imported = _sql_uses(ast.parse(
        "from sqlmodel import Session, select as sel\nfrom dcoflow.core.db import session_scope\n"
        "def f(s, index):\n    index.select(1)\n    s.exec(sel(X))\n    with session_scope() as t, Session(e) as u:\n"
        "        pass\n"))
    assert queries == ["5: .exec(", "5: sel("]
    assert sessions == ["6: Session(", "6: session_scope("]
    assert imported == ["1: imports Session", "1: imports select"]


# Settings are read at the edges (CLI commands, flow entries) and passed down; below flows only the registry, the
# edge that builds clients, reads them. `registry.configured()` is get_settings() under another name, so a call to
# it counts as reading settings too. Known offenders, which only shrink: connectors that fall back to the process's
# settings when their caller passed no value (tasks that call them without values read settings through them).
STILL_READS_SETTINGS: dict[str, str] = {
    "connectors/http.py": "timeout/retries/backoff when the client was not built by the registry",
    "connectors/webhook.py": "DCO_WEBHOOK_ALLOW_UNSIGNED when the caller passed no allow_unsigned",
    "connectors/executor/local.py": "sandbox folder and run-as user when the caller passed none",
    "connectors/content/governance_file.py": "DCO_GOVERNANCE_FILE when no path is given",
    "connectors/attack/__init__.py": "load_catalog(source) without settings: the default source, cache and limits",
    "connectors/attack/source.py": "the bundle size limit when none is given",
    "connectors/attack/cache.py": "the cache key folder when none is given",
}
READS_SETTINGS = re.compile(r"\b(get_settings|configured)\(")


def test_models_connectors_and_tasks_take_settings_as_values() -> None:
    readers = {path.relative_to(ROOT).as_posix() for layer in ("models", "connectors", "tasks")
               for path in sorted((ROOT / layer).rglob("*.py"))
               if READS_SETTINGS.search(path.read_text(encoding="utf-8"))}
    readers -= {"connectors/registry.py"}
    assert readers <= set(STILL_READS_SETTINGS), sorted(readers - set(STILL_READS_SETTINGS))
    assert not set(STILL_READS_SETTINGS) - readers, (
        f"{sorted(set(STILL_READS_SETTINGS) - readers)} no longer read settings: delete them from STILL_READS_SETTINGS")

PROBE = r"""
import importlib, json, pkgutil, sys, warnings
warnings.simplefilter("ignore")
import dcoflow
from sqlmodel import SQLModel
names = sorted(i.name for i in pkgutil.walk_packages(dcoflow.__path__, "dcoflow."))
failed = {}
for name in names:
    if name == "dcoflow.core.migrations.env":  # runs only inside alembic, which provides its context
        continue
    for loaded in [m for m in sys.modules if m == "dcoflow" or m.startswith("dcoflow.")]:
        del sys.modules[loaded]
    SQLModel.metadata.clear()  # the tables register again as their modules are imported again
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"checked": len(names), "failed": failed}))
"""


@pytest.mark.slow
def test_every_module_imports_first() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600, check=False,
                          cwd=ROOT.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["checked"] > 100
    assert not result["failed"], result["failed"]
