"""Built catalogs cached by content hash, several releases and domains side by side.

Layout under ``<DCO_CACHE_DIR>/attack/``:
``<sha256>-<format>.catalog.pickle`` (the object graph), ``<sha256>-<format>.descriptions.pickle``
(descriptions, read only when one is asked for) and ``sources.json`` (what each source last
resolved to: file stamps and URL ETags, so a known file is not even read again).
``<format>`` is a digest of the object classes' fields: changing them invalidates old caches.
Every write is a temp file renamed into place, so a failed or concurrent load never leaves a
half-written cache.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson

from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.attack.objects import OBJECT_CLASSES, LogSource


def _format_tag() -> str:
    shape = [(cls.__name__, [f.name for f in fields(cls)]) for cls in (*OBJECT_CLASSES.values(), LogSource)]
    return hashlib.sha256(orjson.dumps(shape)).hexdigest()[:8]


FORMAT = _format_tag()


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CatalogCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, content_hash: str, part: str) -> Path:
        return self.root / f"{content_hash}-{FORMAT}.{part}.pickle"

    def load(self, content_hash: str) -> Catalog | None:
        """The cached catalog, or ``None`` when absent or unreadable (then it is rebuilt)."""
        path = self._path(content_hash, "catalog")
        try:
            data = path.read_bytes()
        except OSError:
            return None
        enabled = gc.isenabled()
        gc.disable()  # tens of thousands of small objects: the collector would only slow the load
        try:
            catalog = pickle.loads(data)
        except Exception:
            return None
        finally:
            if enabled:
                gc.enable()
        if not isinstance(catalog, Catalog) or catalog.content_hash != content_hash:
            return None
        desc_path = self._path(content_hash, "descriptions")
        catalog.set_description_loader(lambda: _read_descriptions(desc_path))
        return catalog

    def store(self, catalog: Catalog) -> None:
        atomic_write(self._path(catalog.content_hash, "descriptions"),
                     pickle.dumps(catalog.descriptions, protocol=5))
        atomic_write(self._path(catalog.content_hash, "catalog"), pickle.dumps(catalog, protocol=5))

    # -- what each source resolved to ------------------------------------------------------------
    @property
    def _sources_path(self) -> Path:
        return self.root / "sources.json"

    def sources(self) -> dict[str, dict[str, Any]]:
        try:
            data = orjson.loads(self._sources_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def source_entry(self, key: str) -> dict[str, Any] | None:
        entry = self.sources().get(key)
        return entry if isinstance(entry, dict) else None

    def remember(self, key: str, **entry: Any) -> None:
        data = self.sources()
        data[key] = entry
        atomic_write(self._sources_path, orjson.dumps(data, option=orjson.OPT_INDENT_2))


def _read_descriptions(path: Path) -> dict[str, str]:
    try:
        data = pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError):
        return {}
    return data if isinstance(data, dict) else {}
