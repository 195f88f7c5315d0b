"""A typer group that imports a subcommand's module only when that subcommand runs.

`dco attack technique …` should not pay for Prefect, alembic or pandas, which other areas need. The root group
knows each area by name, module and one help line; the module is imported when the command line names it.
Listing the commands (`dco --help`) uses the help lines and imports nothing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class LazyArea:
    """One root-level command living in ``module``.

    ``merged`` means the module's ``app`` contributes a command of this name to the root (``dco brief``,
    ``dco publish``); otherwise the whole ``app`` is the group ``dco <name> …``.
    """

    module: str
    help: str
    merged: bool = False


class LazyGroup(TyperGroup):
    """The root group: eager commands as usual, plus ``areas`` loaded on first use."""

    areas: ClassVar[dict[str, LazyArea]] = {}  # a subclass names its areas

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in self.areas if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in self.areas:
            return super().get_command(ctx, cmd_name)
        if self._listing:  # a help or completion listing needs a name and a line, not the module
            return TyperCommand(name=cmd_name, help=self.areas[cmd_name].help)
        command = load_area(cmd_name, self.areas[cmd_name])
        self.commands[cmd_name] = command
        return command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and name not in self.commands and name not in self.areas and not ctx.resilient_parsing:
            # typer suggests from the loaded commands only; suggest from every area, as before areas were lazy
            matches = get_close_matches(name, self.list_commands(ctx))
            if matches:
                ctx.fail(f"No such command {name!r}. Did you mean {', '.join(repr(m) for m in matches)}?")
        return super().resolve_command(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def shell_complete(self, ctx: Any, incomplete: str) -> Any:
        self._listing = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            self._listing = False


def load_area(name: str, area: LazyArea) -> Any:
    """The click command for ``name``, built from its module's typer ``app`` as ``add_typer`` would."""
    app: typer.Typer = importlib.import_module(area.module).app
    group = typer.main.get_group(app)
    if area.merged:
        command = group.commands.get(name)
        if command is None:
            raise LookupError(f"{area.module}.app has no command {name!r}")
        return command
    group.name = name
    return group
