"""dcoflow: Defensive Cyberspace Operations end to end, as Prefect 3 flows.

The layers live in the repository's top-level folders and install as subpackages (see ``setup.py``):
``dcoflow.flows`` → ``dcoflow.tasks`` → ``dcoflow.connectors`` → ``dcoflow.models`` → ``dcoflow.core``.
This module sits above them and wires the one thing core needs from a higher layer: which tables are ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcoflow.core.schema import provide_tables

if TYPE_CHECKING:
    from sqlalchemy import MetaData


def _tables() -> MetaData:
    # The composition root sits above the layers, so it may hand core the models' tables (core may not import them).
    from dcoflow.models.tables import metadata

    return metadata()


provide_tables(_tables)


def __getattr__(name: str) -> Any:
    # Looked up on use: importlib.metadata costs every `dco` start a few tens of milliseconds otherwise.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("dcoflow")
        except PackageNotFoundError:  # running from a tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'dcoflow' has no attribute {name!r}")
