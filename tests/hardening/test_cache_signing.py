"""The ATT&CK cache never unpickles a file this install did not sign (issue 14)."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path
from typing import Any

import pytest

from dcoflow.connectors.attack import load_catalog
from dcoflow.connectors.attack.cache import CatalogCache, cache_key


class Boom:
    """Unpickling this runs code: it writes a marker file."""

    marker: Path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "pwned"))


def _planted(marker: Path) -> bytes:
    b = Boom()
    b.marker = marker
    return pickle.dumps(b)


@pytest.mark.parametrize("how", ["bare-pickle", "wrong-key", "truncated", "flipped-byte"])
def test_planted_or_foreign_caches_are_refused(settings: Any, shared_dir: Path, tmp_path: Path, how: str) -> None:
    from dcoflow.connectors import attack

    bundle = shared_dir / "attack" / "ics-attack-18.1.json.gz"
    attack._memo.clear()
    attack._by_hash.clear()
    first = load_catalog(str(bundle))
    cache = CatalogCache(settings.cache_dir / "attack")
    path = cache._path(first.content_hash, "catalog")
    assert path.is_file()
    marker = tmp_path / "pwned.txt"
    evil = _planted(marker)
    if how == "bare-pickle":
        path.write_bytes(evil)
    elif how == "wrong-key":
        path.write_bytes(CatalogCache(path.parent, key=b"k" * 32)._seal(evil))
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:20])
    else:
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    attack._memo.clear()
    attack._by_hash.clear()
    again = load_catalog(str(bundle))
    assert not marker.exists()
    assert again.content_hash == first.content_hash and again.technique("T0800").name
    assert CatalogCache(path.parent).load(first.content_hash) is not None  # rebuilt and re-signed


def test_key_lives_outside_the_cache_and_is_private(tmp_path: Path) -> None:
    key = cache_key(tmp_path / "data")
    assert len(key) == 32 and cache_key(tmp_path / "data") == key
    mode = stat.S_IMODE(os.stat(tmp_path / "data" / "cache.key").st_mode)
    assert mode == 0o600
