"""How every CLI command prints: a rich table for people, one JSON document with --json,
and DcoErrors as a short red message (system, object, reason, hint) with exit code 2."""

from __future__ import annotations

import functools
import getpass
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dcoflow.core.errors import DcoError

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def cli_user(fallback: str = "cli") -> str:
    """Who runs the command (the login name), recorded as the actor of what it changes."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return fallback


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        # data is not markup: "[T1003]" or "[object]" must print as written
        t.add_row(*["" if v is None else escape(str(v)) for v in row])
    console.print(t)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a DcoError into a clear message and exit code 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DcoError as exc:
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
            raise typer.Exit(2) from exc

    return wrapper
