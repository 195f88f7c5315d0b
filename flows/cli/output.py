"""How every CLI command prints: a rich table for people, one JSON document with --json,
and DcoErrors as a short red message (system, object, reason, hint) with exit code 2."""

from __future__ import annotations

import csv
import functools
import getpass
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from dcoflow.core.errors import DcoError


class SafeConsole(Console):
    """A Console that shows control characters in text as ``\\xNN``: a DCO name, bundle name or Sigma
    title holding an ANSI escape cannot recolour, move the cursor or retitle the terminal. (Our own
    markup has none; rich adds its styling after this.) User text inside markup still goes through
    :func:`u`, so a name like ``[blink]x`` prints as written."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(plain(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = SafeConsole()
err_console = SafeConsole(stderr=True)

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
        t.add_row(*["" if v is None else escape(plain(v)) for v in row])
    console.print(t)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """The CLI's one error boundary: a DcoError — or one of the failures bad input causes that a
    reader did not name (see ``as_dco_error``) — becomes one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DcoError as exc:
            fail(exc)
        except Exception as exc:
            if not is_input_failure(exc):
                raise  # a bug: keep its traceback
            fail(as_dco_error(exc, _inputs(args, kwargs)))

    wrapper.dco_error_boundary = True  # type: ignore[attr-defined]
    return wrapper


def fail(exc: DcoError) -> NoReturn:
    err_console.print(Text("error: ", style="bold red") + Text(one_line(exc.message)), soft_wrap=True)
    raise typer.Exit(2) from exc


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def plain(value: Any) -> str:
    """User-supplied text made safe for a terminal: control characters (ANSI escapes) shown as
    ``\\xNN`` so they cannot recolour, move the cursor or retitle the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def u(value: Any) -> str:
    """User-supplied text for a markup string: markup escaped, control characters shown."""
    return escape(plain(value))


def one_line(text: str) -> str:
    return plain(" ".join(str(text).split("\n")).strip())


# Failures that bad input (a file, a path, a URL) causes deep inside a library; each maps to a
# DcoError naming the command's inputs. Anything else is a bug and keeps its traceback.
INPUT_FAILURES: tuple[type[BaseException], ...] = (
    RecursionError, UnicodeError, csv.Error, OverflowError, MemoryError, OSError,
)


def is_input_failure(exc: BaseException) -> bool:
    # SQLAlchemy by module name: importing it here would slow every command's start
    return isinstance(exc, INPUT_FAILURES) or type(exc).__module__.startswith("sqlalchemy.")


def as_dco_error(exc: BaseException, inputs: str | None = None) -> DcoError:
    """The last-resort mapping of an unexpected failure to a DcoError (system, object, reason)."""
    reason: str
    system = "input"
    obj = inputs
    if isinstance(exc, RecursionError):
        reason = "input nested too deeply to read"
    elif isinstance(exc, UnicodeDecodeError):
        reason = f"not UTF-8 text (byte {exc.start}: {exc.reason})"
    elif isinstance(exc, UnicodeError):
        reason = f"text cannot be encoded: {exc}"
    elif isinstance(exc, csv.Error):
        reason = f"unreadable CSV: {exc}"
    elif isinstance(exc, OverflowError):
        reason = f"a number is out of range: {exc}"
    elif isinstance(exc, MemoryError):
        reason = "input too large to hold in memory"
    elif isinstance(exc, OSError):
        system = "file"
        obj = str(exc.filename) if exc.filename is not None else inputs
        reason = _os_reason(exc)
    else:  # sqlalchemy.exc.SQLAlchemyError
        system = "database"
        obj = "DCO_DATABASE_URL"
        reason = _db_reason(exc)
    return DcoError(reason, system=system, object=obj)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, NotADirectoryError):
        return "a part of the path is a file, not a folder"
    if isinstance(exc, FileExistsError):
        return "already exists"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "no such file or folder"
    return exc.strerror or str(exc) or type(exc).__name__


def _db_reason(exc: BaseException) -> str:
    from sqlalchemy.exc import ArgumentError, DataError, OperationalError

    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    if isinstance(exc, ArgumentError):
        return f"not a database URL: {first}"
    if isinstance(exc, OperationalError):
        return f"cannot reach or open the database: {first}"
    if isinstance(exc, DataError):
        return f"the database refused a value: {first}"
    return f"{type(cause).__name__}: {first}"


def _inputs(args: Sequence[Any], kwargs: dict[str, Any]) -> str | None:
    """The command's path arguments, to name what it was reading."""
    paths = [str(v) for v in (*args, *kwargs.values()) if isinstance(v, Path)]
    paths += [str(p) for v in kwargs.values() if isinstance(v, list) for p in v if isinstance(p, Path)]
    return ", ".join(paths) or None
