"""dcoflow: Defensive Cyberspace Operations end to end, as Prefect 3 flows.

The layers live in the repository's top-level folders and install as subpackages (see ``setup.py``):
``dcoflow.flows`` → ``dcoflow.tasks`` → ``dcoflow.connectors`` / ``dcoflow.models`` → ``dcoflow.core``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dcoflow")
except PackageNotFoundError:  # running from a tree that was never installed
    __version__ = "0+unknown"
