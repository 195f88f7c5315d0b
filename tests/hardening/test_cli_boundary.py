"""Every bad input at the CLI is one line naming it, exit code 2, and nothing stored changes (issue 14)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, text
from typer.testing import CliRunner

from dcoflow.core.db import dispose_engines
from dcoflow.core.settings import get_settings
from dcoflow.flows.cli import app

GOOD = {"name": "Hardening hunt", "objective": "keep what is stored", "type": "threat-hunt",
        "threat_profile": {"techniques": ["T1059.001"]}}


@pytest.fixture()
def cli(settings: Any, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Runs `dco …` against a database that holds one DCO; checks the database and output folder did not change."""
    monkeypatch.setenv("DCO_DATABASE_URL", db_url)
    get_settings.cache_clear()
    good = tmp_path / "good.yaml"
    good.write_text(json.dumps(GOOD), encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(app, ["ops", "create", str(good)]).exit_code == 0
    out = Path(get_settings().output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kept.txt").write_text("already here", encoding="utf-8")

    def snapshot() -> Any:
        dispose_engines()
        engine = create_engine(db_url, poolclass=pool.NullPool)
        with engine.connect() as c:
            ops = c.execute(text("SELECT id, name, state, version FROM operation ORDER BY id")).all()
            audit = c.execute(text("SELECT count(*) FROM audit_event")).scalar()
        engine.dispose()
        files = sorted((str(p.relative_to(out)), p.read_bytes()) for p in out.rglob("*") if p.is_file())
        return [tuple(r) for r in ops], audit, files

    before = snapshot()

    def run(*args: str) -> Any:
        result = CliRunner().invoke(app, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    yield run
    assert snapshot() == before


def _one_line_error(result: Any, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _deep(n: int) -> str:
    return "[" * n + "]" * n


OPERATION_FILES: list[tuple[str, bytes, str]] = [
    ("deep.yaml", _deep(100_000).encode(), "nesting depth"),
    ("deep-map.yaml", ("name: " + "{a: " * 5000 + "1" + "}" * 5000).encode(), "nesting depth"),
    ("deep.json", _deep(100_000).encode(), "nested too deeply"),
    ("latin1.yaml", "name: café hunt\nobjective: x\n".encode("latin-1"), "not UTF-8"),
    ("binary.json", bytes(range(256)) * 8, "not UTF-8"),
    ("utf16.yaml", "name: hunt\n".encode("utf-16"), "not UTF-8"),
    ("dup.yaml", b"name: abc hunt\nname: xyz hunt\nobjective: abc\ntype: threat-hunt\n", "duplicate key 'name'"),
    ("dup-nested.yaml", b"name: abc hunt\nthreat_profile:\n  groups: [G0016]\n  groups: [G0007]\n",
     "duplicate key 'groups'"),
    ("nul.yaml", json.dumps({**GOOD, "name": "nul\x00 hunt"}).encode(), "NUL"),
    ("nul-key.json", json.dumps({**GOOD, "scope": {"hosts\x00": []}}).encode(), "NUL"),
    ("empty-tid.json", json.dumps({**GOOD, "threat_profile": {"techniques": [""]}}).encode(), "technique id"),
    ("x-tid.json", json.dumps({**GOOD, "threat_profile": {"techniques": ["X1234"]}}).encode(), "'X1234'"),
    ("forbidden.json", json.dumps({**GOOD, "rules_of_engagement": {"forbidden_techniques": ["not-an-id"]}}).encode(),
     "'not-an-id'"),
]


@pytest.mark.parametrize(("name", "content", "needle"), OPERATION_FILES, ids=[c[0] for c in OPERATION_FILES])
def test_bad_operation_files(cli: Callable[..., Any], tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    _one_line_error(cli("ops", "create", str(path)), needle, name)


def test_operation_file_that_is_a_directory(cli: Callable[..., Any], tmp_path: Path) -> None:
    _one_line_error(cli("ops", "create", str(tmp_path)), str(tmp_path))


@pytest.mark.parametrize("target", ["dir", "under-a-file"])
def test_unwritable_svg_path(cli: Callable[..., Any], tmp_path: Path, target: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    path = tmp_path if target == "dir" else blocker / "trend.svg"
    _one_line_error(cli("assess", "trend", "--svg", str(path)), str(path if target == "dir" else blocker))


@pytest.mark.parametrize("url", ["notaurl", "postgresql+psycopg://bob:hunter2@127.0.0.1:1/x?password=s3cr3t",
                                 "sqlite:////nonexistent-dir/sub/x.db"])
def test_bad_database_url_is_one_line_without_secrets(settings: Any, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DCO_DATABASE_URL", url)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["ops", "list"])
    line = _one_line_error(result, "DCO_DATABASE_URL")
    assert "hunter2" not in result.output and "s3cr3t" not in result.output, line
    dispose_engines()


@pytest.mark.parametrize("args", [["attack", "search", "x", "--limit", "-5"], ["attack", "search", "x", "--limit", "0"],
                                  ["assess", "gaps", "x", "--limit", "-1"]])
def test_negative_limits_are_refused(settings: Any, args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--limit" in result.output


@pytest.mark.parametrize(("body", "needle"), [
    (gzip.compress(b"\0" * (8 * 1024 * 1024)), "larger than"),
    (gzip.compress(b'{"type": "bundle", "objects": []}' * 1000)[:-30], "truncated"),
    (b"\x1f\x8bnot gzip at all", "gzip"),
])
def test_bundle_bombs_and_broken_gzip(cli: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     body: bytes, needle: str) -> None:
    monkeypatch.setenv("DCO_MAX_BUNDLE_BYTES", str(1024 * 1024))
    get_settings.cache_clear()
    bundle = tmp_path / "bomb.json.gz"
    bundle.write_bytes(body)
    _one_line_error(cli("attack", "tactics", "--attack", str(bundle)), needle, str(bundle))


def test_every_command_has_the_error_boundary() -> None:
    """A command without handle_errors would print tracebacks again."""
    import typer.main

    group = typer.main.get_command(app)
    missing: list[str] = []

    def walk(cmd: Any, path: str) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")
        callback = getattr(cmd, "callback", None)
        if not getattr(cmd, "commands", None) and callback is not None:
            seen = callback
            while seen is not None and not getattr(seen, "dco_error_boundary", False):
                seen = getattr(seen, "__wrapped__", None)
            if seen is None:
                missing.append(path)

    walk(group, "dco")
    assert not missing
