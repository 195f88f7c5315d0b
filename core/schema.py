"""Which tables are dcoflow's. They are models, and core imports nothing above it, so core is handed a
function that loads them: the package root (``dcoflow/__init__.py``) passes ``dcoflow.models.tables.metadata``
before anything can open a database. Light on purpose: the root imports it on every ``dco`` start."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import MetaData

_loader: Callable[[], MetaData] | None = None


def provide_tables(loader: Callable[[], MetaData]) -> None:
    """Set the function that imports every table and returns the metadata holding them."""
    global _loader  # noqa: PLW0603  (set once, by the package root)
    _loader = loader


def our_tables() -> MetaData:
    """The metadata of every dcoflow table (migrations compare against it; adopting a database uses it)."""
    if _loader is None:
        from dcoflow.core.errors import StateError  # here: the root imports this module on every start

        raise StateError("no tables were provided to dcoflow.core (dcoflow/__init__.py provides them)",
                         system="database", object="schema")
    return _loader()
