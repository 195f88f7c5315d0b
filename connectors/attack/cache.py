"""Built catalogs cached by content hash, several releases and domains side by side.

Layout under ``<DCO_CACHE_DIR>/attack/``:
``<sha256>-<format>.catalog.pickle`` (the object graph), ``<sha256>-<format>.descriptions.pickle``
(descriptions, read only when one is asked for) and ``sources.json`` (what each source last
resolved to: file stamps and URL ETags, so a known file is not even read again).
``<format>`` is a digest of the object classes' fields: changing them invalidates old caches.
Every write is a temp file renamed into place, so a failed or concurrent load never leaves a
half-written cache.

Unpickling runs code, so a pickle is only loaded after its HMAC-SHA256 (keyed by a secret kept in
``DCO_DATA_DIR``, outside the cache folder, created 0600 on first use) checks out: a file planted in
``DCO_CACHE_DIR`` or written by another install is refused and the catalog rebuilt from the bundle.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import logging
import os
import pickle
import secrets
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
log = logging.getLogger(__name__)


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


_MAC_LEN = 32
_KEY_FILE = "cache.key"


def cache_key(data_dir: Path) -> bytes:
    """This install's cache-signing key: ``<data_dir>/cache.key``, 32 random bytes made on first use."""
    path = data_dir / _KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=f".{_KEY_FILE}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        try:  # another process may have made one meanwhile: theirs wins, both then agree
            os.link(tmp, path)
        except FileExistsError:
            return cache_key(data_dir)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return key


def _default_key() -> bytes:
    from dcoflow.connectors.registry import configured

    return cache_key(configured().data_dir)


class CatalogCache:
    """Catalogs under ``root``, signed with ``key`` (default: the install's key in ``key_dir``, DCO_DATA_DIR)."""

    def __init__(self, root: Path, key: bytes | None = None, *, key_dir: Path | None = None) -> None:
        self.root = root
        self._key = key
        self._key_dir = key_dir

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = cache_key(self._key_dir) if self._key_dir is not None else _default_key()
        return self._key

    def _seal(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest() + payload

    def _open(self, data: bytes) -> bytes | None:
        """The payload when its MAC is ours, else None (planted, foreign or damaged)."""
        mac, payload = data[:_MAC_LEN], data[_MAC_LEN:]
        good = hmac.new(self.key, payload, hashlib.sha256).digest()
        return payload if len(data) > _MAC_LEN and hmac.compare_digest(mac, good) else None

    def _path(self, content_hash: str, part: str) -> Path:
        return self.root / f"{content_hash}-{FORMAT}.{part}.pickle"

    def load(self, content_hash: str) -> Catalog | None:
        """The cached catalog, or ``None`` when absent or unreadable (then it is rebuilt)."""
        path = self._path(content_hash, "catalog")
        try:
            data = self._open(path.read_bytes())
        except OSError:
            return None
        if data is None:
            log.warning("ignoring ATT&CK cache %s: not signed by this install; rebuilding", path)
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
        catalog.set_description_loader(lambda: self._read_descriptions(desc_path))
        return catalog

    def store(self, catalog: Catalog) -> None:
        atomic_write(self._path(catalog.content_hash, "descriptions"),
                     self._seal(pickle.dumps(catalog.descriptions, protocol=5)))
        atomic_write(self._path(catalog.content_hash, "catalog"), self._seal(pickle.dumps(catalog, protocol=5)))

    def _read_descriptions(self, path: Path) -> dict[str, str]:
        try:
            payload = self._open(path.read_bytes())
        except OSError:
            return {}
        if payload is None:
            log.warning("ignoring ATT&CK cache %s: not signed by this install", path)
            return {}
        try:
            data = pickle.loads(payload)
        except (pickle.UnpicklingError, EOFError):
            return {}
        return data if isinstance(data, dict) else {}

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

