"""Load the ATT&CK catalog: ``load_catalog(source=None, domain=None) -> Catalog``.

The source defaults to ``settings.default_attack_source(domain)`` (``DCO_ATTACK_SOURCE``,
else the newest bundle of the domain under ``DCO_CONTENT_DIR/attack``, else the official URL), where
``settings`` is what the caller passes, else the configured settings.
The built index is cached by content hash in ``DCO_CACHE_DIR/attack`` and memoised in the process.
A remote source that cannot be reached falls back to the last cached copy of that source; with
no copy it raises ``ConnectorError`` saying which setting to use.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcoflow.connectors.attack.cache import CatalogCache
from dcoflow.connectors.attack.source import SETTING, SourceSpec, parse_source
from dcoflow.core.errors import ConfigError, ConnectorError, ContentError
from dcoflow.models.attack.catalog import DOMAINS, Catalog

if TYPE_CHECKING:
    import httpx

    from dcoflow.core.settings import Settings
    from dcoflow.models.attack.pyattck_api import Attck

log = logging.getLogger(__name__)

# A remote source checked this recently is served from the cache without a request.
REMOTE_RECHECK_S = 6 * 3600

_memo: dict[tuple[str, str | None], Catalog] = {}
_by_hash: dict[str, Catalog] = {}


def clear_memo() -> None:
    """Forget the catalogs loaded in this process (tests, long-running workers after a sync)."""
    _memo.clear()
    _by_hash.clear()


def ensure_catalog(catalog: Catalog | None, source: str | None = None, *,
                   settings: Settings | None = None) -> Catalog:
    """``catalog`` when the caller already holds one (a flow passes it between tasks), else :func:`load_catalog`."""
    return catalog if catalog is not None else load_catalog(source, settings=settings)


def load_catalog(
    source: str | None = None,
    domain: str | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    refresh: bool = False,
    settings: Settings | None = None,
) -> Catalog:
    """The catalog of ``source`` (path, https URL or ``taxii+https://…/collections/<id>/``).

    ``domain`` picks the default bundle (enterprise, mobile, ics) and, when given, is checked
    against the bundle. ``refresh`` re-reads a remote source even when recently checked. ``settings``
    (the edge's; default the configured) give the default source, the cache and the limits.
    """
    if settings is None:
        from dcoflow.connectors.registry import configured

        settings = configured()
    if domain is not None and domain not in DOMAINS:
        raise ConfigError(f"unknown ATT&CK domain {domain!r}", object="DCO_ATTACK_DOMAIN",
                          hint=f"one of {', '.join(DOMAINS)}")
    if domain is None and source is None and settings.attack_domain not in DOMAINS:
        raise ConfigError(f"unknown ATT&CK domain {settings.attack_domain!r}", object="DCO_ATTACK_DOMAIN",
                          hint=f"one of {', '.join(DOMAINS)}")
    src = source or settings.default_attack_source(domain)
    key = (src, domain)
    if not refresh and key in _memo:
        return _memo[key]
    spec = parse_source(src)
    cache = CatalogCache(settings.cache_dir / "attack", key_dir=settings.data_dir)
    if spec.kind == "file":
        catalog = _load_file(Path(spec.location), cache, settings.max_bundle_bytes)
    else:
        catalog = _load_remote(spec, cache, transport=transport, refresh=refresh, settings=settings)
    if domain is not None and catalog.domain != domain:
        raise ContentError(f"{spec.display} holds ATT&CK {catalog.domain}, not {domain}", object=spec.display,
                           hint=f"point {SETTING} at a {domain}-attack bundle, or drop the domain")
    catalog.source = spec.display
    _memo[key] = catalog
    return catalog


def load_attck(source: str | None = None, domain: str | None = None, *, full_stix: bool = False) -> Attck:
    """The pyattck-style facade over ``load_catalog(source, domain)``; ``full_stix`` also reads the bundle's
    objects for the STIX properties the catalog does not index (a local bundle file: about a second)."""
    from dcoflow.models.attack.pyattck_api import Attck

    catalog = load_catalog(source, domain)
    return Attck(catalog, stix_objects=load_stix_objects(source, domain) if full_stix else None)


def load_stix_objects(source: str | None = None, domain: str | None = None) -> list[dict[str, Any]]:
    """The STIX objects of the bundle ``load_catalog(source, domain)`` reads, for views that need whole objects
    (the pyattck facade's ``full_stix``). Read each time, not cached: the catalog is the fast path."""
    import orjson

    from dcoflow.connectors.attack.source import read_file
    from dcoflow.connectors.registry import configured

    src = source or configured().default_attack_source(domain)
    spec = parse_source(src)
    if spec.kind != "file":
        raise ConfigError("whole STIX objects are read from a bundle file, not a URL or TAXII collection",
                          object=spec.display, hint="fetch the bundle with `dco sync-content` and point "
                          f"{SETTING} at the file")
    try:
        parsed = orjson.loads(read_file(Path(spec.location).expanduser()))
    except orjson.JSONDecodeError as exc:
        raise ContentError(f"not JSON: {exc}", object=spec.display, hint=f"point {SETTING} at an ATT&CK STIX bundle") \
            from exc
    objects = parsed.get("objects") if isinstance(parsed, dict) else None
    if not isinstance(objects, list):
        raise ContentError("not a STIX bundle: no objects list", object=spec.display,
                           hint=f"point {SETTING} at an ATT&CK STIX bundle")
    return [o for o in objects if isinstance(o, dict)]


def _from_cache(content_hash: str, cache: CatalogCache) -> Catalog | None:
    hit = _by_hash.get(content_hash) or cache.load(content_hash)
    if hit is not None:
        _by_hash[content_hash] = hit
    return hit


def _build(data: bytes | list[dict[str, Any]], content_hash: str, where: str, cache: CatalogCache) -> Catalog:
    import orjson

    from dcoflow.models.attack.build import build_catalog

    if isinstance(data, bytes):
        try:
            parsed: Any = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ContentError(f"not JSON: {exc}", object=where,
                               hint=f"point {SETTING} at an ATT&CK STIX bundle (.json or .json.gz)") from exc
    else:
        parsed = data
    try:
        catalog = build_catalog(parsed, content_hash=content_hash, source=where)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a field of a shape ATT&CK never has
        raise ContentError(f"malformed ATT&CK bundle: {type(exc).__name__}: {exc}", object=where,
                           hint=f"point {SETTING} at an ATT&CK STIX bundle (.json or .json.gz)") from exc
    try:
        cache.store(catalog)
    except OSError as exc:  # a read-only cache costs speed, not correctness
        log.warning("cannot write the ATT&CK cache in %s: %s", cache.root, exc)
    _by_hash[content_hash] = catalog
    return catalog


def _load_file(path: Path, cache: CatalogCache, limit: int) -> Catalog:
    from dcoflow.connectors.attack.source import read_file

    resolved = path.expanduser().resolve()
    key = f"file:{resolved}"
    try:
        st = resolved.stat()
        stamp = [st.st_size, st.st_mtime_ns]
    except OSError:
        stamp = None
    entry = cache.source_entry(key) if stamp else None
    if entry and entry.get("stamp") == stamp:
        hit = _from_cache(str(entry["hash"]), cache)
        if hit is not None:
            return hit
    data = read_file(resolved, limit)
    content_hash = hashlib.sha256(data).hexdigest()
    catalog = _from_cache(content_hash, cache) or _build(data, content_hash, str(resolved), cache)
    if stamp:
        _remember(cache, key, stamp=stamp, hash=content_hash)
    return catalog


def _remember(cache: CatalogCache, key: str, **entry: Any) -> None:
    try:
        cache.remember(key, **entry)
    except OSError as exc:
        log.warning("cannot record %s in the ATT&CK cache: %s", key, exc)


def _load_remote(spec: SourceSpec, cache: CatalogCache, *, transport: httpx.BaseTransport | None,
                 refresh: bool, settings: Settings) -> Catalog:
    from dcoflow.connectors.attack.remote import AttackHttp
    from dcoflow.connectors.taxii import TaxiiClient

    key = f"{spec.kind}:{spec.display}"
    entry = cache.source_entry(key)
    if entry and not refresh and time.time() - float(entry.get("checked", 0)) < REMOTE_RECHECK_S:
        hit = _from_cache(str(entry["hash"]), cache)
        if hit is not None:
            return hit
    try:
        if spec.kind == "url":
            with AttackHttp(spec.location, transport=transport, timeout_s=settings.http_timeout_s,
                            retries=settings.http_retries, backoff_s=settings.http_backoff_s,
                            max_bytes=settings.max_bundle_bytes,
                            auth=(spec.username, spec.password or "") if spec.username else None) as http:
                data, new_etag = http.fetch(entry.get("etag") if entry else None)
                if data is None and entry:
                    hit = _from_cache(str(entry["hash"]), cache)
                    if hit is not None:
                        _remember(cache, key, hash=entry["hash"], etag=new_etag, checked=time.time())
                        return hit
                    data, new_etag = http.fetch()
                assert data is not None
                content_hash = hashlib.sha256(data).hexdigest()
                catalog = _from_cache(content_hash, cache) or _build(data, content_hash, spec.display, cache)
                _remember(cache, key, hash=content_hash, etag=new_etag, checked=time.time())
                return catalog
        # TAXII 2.1: the location is <api-root>/collections/<id>/; one TAXII client for reading and publishing.
        api_root, _, rest = spec.location.partition("/collections/")
        with TaxiiClient(api_root + "/", username=spec.username, password=spec.password, transport=transport,
                         timeout=settings.http_timeout_s, retries=settings.http_retries,
                         backoff_s=settings.http_backoff_s) as taxii:
            objects = list(taxii.get_objects(rest.strip("/")))
    except ConnectorError as exc:
        if exc.retryable and entry:
            hit = _from_cache(str(entry["hash"]), cache)
            if hit is not None:
                log.warning("%s unreachable (%s); using the cached copy from %s", spec.display, exc.reason,
                            time.strftime("%Y-%m-%d %H:%M", time.localtime(float(entry.get("checked", 0)))))
                return hit
        if exc.retryable:
            raise ConnectorError(
                exc.reason, status=exc.status, object=spec.display, retryable=True,
                hint=f"no cached copy of it; offline, set {SETTING} to a local bundle file "
                "or DCO_CONTENT_DIR to a content folder (see `dco sync-content`)",
            ) from exc
        raise
    import orjson

    canonical = orjson.dumps(sorted(objects, key=lambda o: (str(o.get("id")), str(o.get("modified")))),
                             option=orjson.OPT_SORT_KEYS)
    content_hash = hashlib.sha256(canonical).hexdigest()
    catalog = _from_cache(content_hash, cache) or _build(objects, content_hash, spec.display, cache)
    _remember(cache, key, hash=content_hash, checked=time.time())
    return catalog


__all__ = ["clear_memo", "load_attck", "load_catalog", "load_stix_objects"]
