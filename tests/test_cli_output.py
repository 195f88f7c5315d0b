"""CLI output prints data as written: error objects in brackets and table cells are not rich markup."""

from __future__ import annotations

import pytest
import typer
from rich.console import Console

from dcoflow.core.errors import NotFoundError
from dcoflow.flows.cli import output


@pytest.fixture()
def captured(monkeypatch: pytest.MonkeyPatch) -> Console:
    console = Console(record=True, width=200)
    monkeypatch.setattr(output, "err_console", console)
    monkeypatch.setattr(output, "console", console)
    return console


def test_error_message_keeps_the_bracketed_object(captured: Console) -> None:
    @output.handle_errors
    def show() -> None:
        raise NotFoundError("no such DCO", system="store", object="op-[lab]", hint="see `dco ops list`")

    with pytest.raises(typer.Exit) as exit_info:
        show()
    assert exit_info.value.exit_code == 2
    assert "error: store [op-[lab]]: no such DCO (see `dco ops list`)" in captured.export_text()


def test_table_cells_are_not_markup(captured: Console) -> None:
    output.table("hits", ["rule", "host"], [["[bold]Procdump[/bold] [T1003.001]", None]])
    text = captured.export_text()
    assert "[bold]Procdump[/bold] [T1003.001]" in text
