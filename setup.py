"""Map the repository's top-level folders onto one import package, ``dcoflow``.

The product owner fixed the tree (``flows/``, ``tasks/``, ``connectors/``, ``models/``, ``core/`` at the top);
installing them under their own names would shadow, or be shadowed by, PyPI packages called ``models`` or
``core``. So each folder becomes ``dcoflow.<folder>``; ``dcoflow`` itself is ``dcoflow_pkg/``, which holds only
``__init__`` and ``py.typed``. Everything else about the build is in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

LAYERS = ("core", "models", "connectors", "tasks", "flows")

setup(
    packages=["dcoflow", *(f"dcoflow.{p}" for p in find_packages(include=[f"{layer}*" for layer in LAYERS]))],
    package_dir={"dcoflow": "dcoflow_pkg", **{f"dcoflow.{layer}": layer for layer in LAYERS}},
)
