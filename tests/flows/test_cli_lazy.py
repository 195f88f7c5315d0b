"""The CLI imports an area's module only when its command runs: `dco attack …` never loads Prefect.

Behavioural checks in a fresh interpreter (what a user's `dco` process imports), not timings; the speed
targets are in bench/bench_cli.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dcoflow.flows.cli import AREAS, app
from dcoflow.flows.cli.lazy import load_area

# Each costs a fresh `dco` tens of milliseconds or more; importing the CLI and its help need none of them.
HEAVY = ("prefect", "alembic", "pandas", "sqlmodel", "sqlalchemy", "sigma", "httpx", "pydantic_settings")
# The attack commands read the one settings object (pydantic-settings, ~40 ms) for the ATT&CK source and cache.
ATTACK_HEAVY = tuple(m for m in HEAVY if m != "pydantic_settings")

PROBE = """
import json, sys
argv = json.loads(sys.argv[1])
from dcoflow.flows.cli import app
if argv:
    from typer.testing import CliRunner
    result = CliRunner().invoke(app, argv)
    print(result.output, file=sys.stderr)
    assert result.exit_code == 0, result.output
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _modules_after(argv: list[str], env: dict[str, str] | None = None) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout))


def test_importing_the_cli_loads_no_area() -> None:
    loaded = _modules_after([])
    assert not loaded & set(HEAVY), f"importing dcoflow.flows.cli pulled in {sorted(loaded & set(HEAVY))}"


def test_root_help_lists_every_area_without_importing_it() -> None:
    loaded = _modules_after(["--help"])
    assert not loaded & set(HEAVY)


def test_attack_technique_runs_without_prefect(settings: Any, shared_dir: Path) -> None:
    env = {"DCO_ATTACK_SOURCE": str(shared_dir / "attack" / "enterprise-attack-18.1.json.gz"),
           "DCO_CACHE_DIR": str(settings.cache_dir)}
    loaded = _modules_after(["attack", "technique", "T1059.001"], env)
    assert "dcoflow" in loaded
    assert not loaded & set(ATTACK_HEAVY), f"`dco attack technique` pulled in {sorted(loaded & set(ATTACK_HEAVY))}"


def test_help_lines_match_the_modules() -> None:
    """The root's copy of each area's help line is the one the area itself shows."""
    for name, area in AREAS.items():
        command = load_area(name, area)
        assert command.name == name
        assert (command.help or "").strip().split("\n")[0] == area.help, name


@pytest.mark.parametrize("argv", [["attack", "--help"], ["publish", "--help"], ["meeting", "--help"]])
def test_areas_run_through_the_root(argv: list[str]) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert f" {argv[0]} [OPTIONS]" in usage  # the area runs under its own name
    command = load_area(argv[0], AREAS[argv[0]])
    assert all(name in result.output for name in getattr(command, "commands", {}))  # its subcommands listed


def test_unknown_area_is_a_usage_error() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["atack"])
    assert result.exit_code == 2
    assert "attack" in result.output  # the suggestion

