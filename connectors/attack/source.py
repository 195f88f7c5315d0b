"""Where ATT&CK comes from: a bundle file (.json or .json.gz), an https URL, or a TAXII 2.1 collection.

``parse_source`` reads a ``DCO_ATTACK_SOURCE`` value and ``read_file`` a bundle file; a URL is
fetched by ``dcoflow.connectors.attack.remote.AttackHttp`` and a TAXII collection read by
``dcoflow.connectors.taxii.TaxiiClient``. Parsing and indexing happen elsewhere.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from dcoflow.core.errors import ConfigError, ContentError

SourceKind = Literal["file", "url", "taxii"]
SETTING = "DCO_ATTACK_SOURCE"


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A parsed ``DCO_ATTACK_SOURCE`` value."""

    kind: SourceKind
    location: str  # a path, an https URL, or the TAXII collection URL (http[s]://…/collections/<id>/)
    username: str | None = None  # from the URL's user:password@, which the location never keeps
    password: str | None = None

    @property
    def display(self) -> str:
        """The location (never with credentials), for messages and cache keys."""
        return self.location


def parse_source(source: str) -> SourceSpec:
    """``taxii+https://[user:pass@]host/api-root/collections/<id>/``, ``https://[user:pass@]…``, or a path."""
    text = source.strip()
    if not text:
        raise ConfigError("empty ATT&CK source", object=SETTING, hint=f"set {SETTING}")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("taxii+https", "taxii+http", "taxii", "http", "https"):
        # Credentials in the URL go to username/password: the location is shown in messages and
        # is the cache key, so it never carries them.
        parts = urlsplit(text)
        netloc = parts.netloc.rpartition("@")[2]
        user = None if parts.username is None else unquote(parts.username)
        password = None if parts.password is None else unquote(parts.password)
        shown = urlunsplit(parts._replace(netloc=netloc))
        if scheme in ("http", "https"):
            return SourceSpec("url", shown, user, password)
        real = {"taxii+http": "http", "taxii+https": "https", "taxii": "https"}[scheme]
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        if "/collections/" not in path:
            raise ConfigError(
                f"TAXII source {shown!r} names no collection",
                object=SETTING,
                hint="use taxii+https://server/api-root/collections/<collection-id>/",
            )
        return SourceSpec("taxii", urlunsplit((real, netloc, path, "", "")), user, password)
    if scheme and scheme != "file":
        raise ConfigError(f"unsupported ATT&CK source scheme {scheme!r}", object=SETTING,
                          hint="use a bundle path, an https:// URL or taxii+https://…/collections/<id>/")
    return SourceSpec("file", text[len("file://"):] if scheme == "file" else text)


def max_bundle_bytes() -> int:
    """DCO_MAX_BUNDLE_BYTES, for a caller that passed no limit."""
    from dcoflow.connectors.registry import configured

    return configured().max_bundle_bytes


def _too_large(where: str, limit: int) -> ContentError:
    return ContentError(f"bundle is larger than {limit} bytes (decompressed)", object=where,
                        hint="raise DCO_MAX_BUNDLE_BYTES if this bundle is genuine")


def decompress_if_gzip(data: bytes, where: str, limit: int | None = None) -> bytes:
    """Bundles may come gzipped (by name or by magic bytes); a broken stream is a ContentError.

    Decompression stops at ``limit`` bytes (DCO_MAX_BUNDLE_BYTES): a few kB of gzip bomb would
    otherwise expand to gigabytes and end the process with a MemoryError.
    """
    if data[:2] != b"\x1f\x8b":
        return data
    limit = max_bundle_bytes() if limit is None else limit
    out = bytearray()
    rest = data
    try:
        while rest[:2] == b"\x1f\x8b":  # one or more gzip members
            stream = zlib.decompressobj(wbits=31)
            out += stream.decompress(rest, limit + 1 - len(out))
            if len(out) > limit:
                raise _too_large(where, limit)
            if not stream.eof:
                if stream.unconsumed_tail:
                    raise _too_large(where, limit)
                raise EOFError("compressed stream ended before the end-of-stream marker")
            rest = stream.unused_data
    except (OSError, EOFError, zlib.error) as exc:
        raise ContentError(f"corrupt or truncated gzip data: {exc}", object=where,
                           hint=f"download the bundle again, or point {SETTING} at another copy") from exc
    return bytes(out)


def read_file(path: Path, limit: int | None = None) -> bytes:
    """The bundle's JSON bytes (decompressed when gzipped, at most ``limit``: DCO_MAX_BUNDLE_BYTES)."""
    if not path.is_file():
        raise ConfigError(f"ATT&CK bundle {path} does not exist", object=str(path),
                          hint=f"set {SETTING} to a bundle file, URL or TAXII collection, or DCO_CONTENT_DIR")
    limit = max_bundle_bytes() if limit is None else limit
    try:
        if path.stat().st_size > limit:
            raise _too_large(str(path), limit)
        data = path.read_bytes()
    except OSError as exc:
        raise ContentError(f"cannot read the bundle: {exc.strerror or exc}", object=str(path)) from exc
    return decompress_if_gzip(data, str(path), limit)

