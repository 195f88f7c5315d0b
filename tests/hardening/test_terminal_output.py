"""User-supplied names reach the terminal as text: no ANSI escape, no rich markup (issue 14)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dcoflow.core.settings import get_settings
from dcoflow.flows.cli import app
from dcoflow.flows.cli.output import SafeConsole, table, u

HOSTILE = ["evil\x1b[31mred\x1b[0m", "\x1b]0;pwned\x07title", "[blink]blinking[/blink]", "[link=http://evil]x[/link]",
           "bell\x07\x08back", "\x9b31mcsi"]


@pytest.mark.parametrize("name", HOSTILE)
def test_safe_console_and_u(name: str) -> None:
    out = io.StringIO()
    console = SafeConsole(file=out, force_terminal=True, color_system="truecolor", width=200)
    console.print(f"[bold]{u(name)}[/] and {u(name)}")
    console.print(name, markup=False)
    text = out.getvalue()
    assert not {"\x07", "\x08", "\x9b"} & set(text)
    assert "]0;" not in text.replace("\\x1b]0;", "")
    for esc in ("\x1b[31m", "\x1b[5m"):  # the user's colour, and rich's blink for [blink]
        assert esc not in text
    if name.startswith("["):  # printed as written (once rich's own highlighting is taken out)
        assert name in re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize("name", HOSTILE)
def test_table_cells_are_plain(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    from dcoflow.flows.cli import output

    monkeypatch.setattr(output, "console", SafeConsole(file=out, force_terminal=True, width=200))
    table("t", ["name"], [(name,)])
    assert "\x1b[31m" not in out.getvalue() and "\x07" not in out.getvalue()


def test_ops_show_prints_hostile_names_as_text(settings: Any, tmp_path: Path) -> None:
    get_settings.cache_clear()
    spec = {"name": "Hunt \x1b[2J[blink]now[/blink]", "objective": "x\x1b]0;t\x07", "type": "threat-hunt",
            "threat_profile": {"techniques": ["T1059.001"]}}
    path = tmp_path / "op.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    runner = CliRunner()
    created = runner.invoke(app, ["ops", "create", str(path), "--json"])
    assert created.exit_code == 0, created.output
    dco = json.loads(created.output)["dco"]
    shown = runner.invoke(app, ["ops", "show", dco], color=True)
    assert shown.exit_code == 0, shown.output
    assert "\x1b[2J" not in shown.output and "[blink]now[/blink]" in shown.output
    listed = runner.invoke(app, ["ops", "list"], color=True)
    assert "\x1b[2J" not in listed.output


def test_rich_alone_would_pass_escapes_through() -> None:
    """Why SafeConsole exists: a plain Console writes the user's ESC byte as is."""
    out = io.StringIO()
    Console(file=out, force_terminal=True).print("a\x1b[31mb", markup=False)
    assert "a\x1b" in out.getvalue()  # the ESC byte itself, right after the text
