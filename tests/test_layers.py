"""The layers depend one way, flows → tasks → connectors / models → core, and every module imports alone.

The static check reads each module's imports (type-only imports under ``if TYPE_CHECKING:`` do not count);
the import check imports every module first, in a fresh ``dcoflow`` namespace, so an import loop that only
bites when one module is imported before another shows up.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "models", "connectors", "tasks", "flows")
MAY_IMPORT = {
    "core": {"core"},
    "models": {"core", "models"},
    "connectors": {"core", "models", "connectors"},
    "tasks": {"core", "models", "connectors", "tasks"},
    "flows": set(LAYERS),
}
# The one deliberate upward import: creating or migrating the schema needs every table registered, and the
# tables are models. It happens inside the functions that need it, never when core is imported.
REGISTERS_TABLES = {("core/db.py", "dcoflow.models.tables"), ("core/migrations/env.py", "dcoflow.models.tables")}


def _runtime_imports(tree: ast.AST) -> list[str]:
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_layers_import_downwards_only() -> None:
    wrong = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for module in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
                parts = module.split(".")
                if parts[0] in LAYERS:
                    wrong.append(f"{rel}: bare `{module}` (import dcoflow.{module})")
                elif (parts[0] == "dcoflow" and len(parts) > 1 and parts[1] in LAYERS
                      and parts[1] not in MAY_IMPORT[layer] and (rel, module) not in REGISTERS_TABLES):
                    wrong.append(f"{rel} ({layer}) imports {module}")
    assert not wrong, "\n".join(wrong)


def test_models_and_connectors_know_no_prefect() -> None:
    wrong = [f"{p.relative_to(ROOT)}: {m}" for layer in ("core", "models", "connectors")
             for p in sorted((ROOT / layer).rglob("*.py"))
             for m in _runtime_imports(ast.parse(p.read_text(encoding="utf-8"))) if m.split(".")[0] == "prefect"]
    assert not wrong, wrong


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
