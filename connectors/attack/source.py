"""Where ATT&CK comes from: a bundle file (.json or .json.gz), an https URL, or a TAXII 2.1 collection.

Each source returns the bundle's JSON bytes (file, URL) or its objects (TAXII); parsing and
indexing happen elsewhere. Remote sources go over the shared ``connectors.http.HttpConnector``
(``transport=`` for tests): transport errors, timeouts, 429 and 5xx are retried with backoff;
401/403 raise ``AuthError`` at once; other 4xx raise a final ``ConnectorError``.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

from core.errors import ConfigError, ContentError

if TYPE_CHECKING:

    from connectors.http import HttpConnector

SourceKind = Literal["file", "url", "taxii"]
SETTING = "DCO_ATTACK_SOURCE"


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A parsed ``DCO_ATTACK_SOURCE`` value."""

    kind: SourceKind
    location: str  # a path, an https URL, or the TAXII collection URL (http[s]://…/collections/<id>/)
    username: str | None = None
    password: str | None = None

    @property
    def display(self) -> str:
        """The location without credentials, for messages and cache keys."""
        return self.location


def parse_source(source: str) -> SourceSpec:
    """``taxii+https://[user:pass@]host/api-root/collections/<id>/``, ``https://…``, or a path."""
    text = source.strip()
    if not text:
        raise ConfigError("empty ATT&CK source", object=SETTING, hint=f"set {SETTING}")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("taxii+https", "taxii+http", "taxii"):
        parts = urlsplit(text)
        real = {"taxii+http": "http", "taxii+https": "https", "taxii": "https"}[scheme]
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        if "/collections/" not in path:
            raise ConfigError(
                f"TAXII source {text!r} names no collection",
                object=SETTING,
                hint="use taxii+https://server/api-root/collections/<collection-id>/",
            )
        return SourceSpec("taxii", urlunsplit((real, netloc, path, "", "")), parts.username, parts.password)
    if scheme in ("http", "https"):
        return SourceSpec("url", text)
    if scheme and scheme != "file":
        raise ConfigError(f"unsupported ATT&CK source scheme {scheme!r}", object=SETTING,
                          hint="use a bundle path, an https:// URL or taxii+https://…/collections/<id>/")
    return SourceSpec("file", text[len("file://"):] if scheme == "file" else text)


def decompress_if_gzip(data: bytes, where: str) -> bytes:
    """Bundles may come gzipped (by name or by magic bytes); a broken stream is a ContentError."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ContentError(f"corrupt or truncated gzip data: {exc}", object=where,
                           hint=f"download the bundle again, or point {SETTING} at another copy") from exc


def read_file(path: Path) -> bytes:
    """The bundle's JSON bytes (decompressed when gzipped)."""
    if not path.is_file():
        raise ConfigError(f"ATT&CK bundle {path} does not exist", object=str(path),
                          hint=f"set {SETTING} to a bundle file, URL or TAXII collection, or DCO_CONTENT_DIR")
    return decompress_if_gzip(path.read_bytes(), str(path))


def fetch_url(http: HttpConnector, url: str, etag: str | None = None) -> tuple[bytes | None, str | None]:
    """(bundle bytes, ETag); bytes are ``None`` when the server says the cached ``etag`` is current."""
    headers = {"If-None-Match": etag} if etag else None
    resp = http.request("GET", url, headers=headers)
    if resp.status_code == 304:
        return None, etag
    return decompress_if_gzip(resp.content, url), resp.headers.get("ETag")
