"""dcoflow: Defensive Cyberspace Operations end to end, as Prefect 3 flows.

The layers live in the repository's top-level folders and install as subpackages (see ``setup.py``):
``dcoflow.flows`` → ``dcoflow.tasks`` → ``dcoflow.connectors`` / ``dcoflow.models`` → ``dcoflow.core``.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    # Looked up on use: importlib.metadata costs every `dco` start a few tens of milliseconds otherwise.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("dcoflow")
        except PackageNotFoundError:  # running from a tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'dcoflow' has no attribute {name!r}")
