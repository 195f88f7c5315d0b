"""Loading from files and URLs, the content-hash cache, and bad input."""

from __future__ import annotations

import base64
import gzip
import os
from pathlib import Path

import httpx
import pytest

import dcoflow.connectors.attack as attack_connector
from dcoflow.connectors.attack import clear_memo, load_catalog
from dcoflow.connectors.attack.source import parse_source
from dcoflow.core.errors import AuthError, ConfigError, ConnectorError, ContentError
from dcoflow.core.settings import Settings

URL = "https://attack.example.org/enterprise-attack.json"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_default_source_is_newest_bundle_of_the_domain(attack_settings: Settings) -> None:
    cat = load_catalog()
    assert (cat.domain, cat.version) == ("enterprise", "18.1")
    assert load_catalog() is cat  # memoised in the process
    for domain in ("mobile", "ics"):
        other = load_catalog(domain=domain)
        assert (other.domain, other.version) == (domain, "18.1") and other.techniques and other.tactics
    caches = list((attack_settings.cache_dir / "attack").glob("*.catalog.pickle"))
    assert len(caches) == 3  # three releases side by side, keyed by content hash


def test_cache_is_used_by_the_next_process(attack_settings: Settings, attack_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_catalog(str(attack_dir / "mobile-attack-18.1.json.gz"))
    clear_memo()  # as a fresh process: only the cache is left

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuilt although cached")

    monkeypatch.setattr("dcoflow.models.attack.build.build_catalog", no_build)
    monkeypatch.setattr("dcoflow.connectors.attack.source.read_file", no_build)  # a known file is not even read
    again = load_catalog(str(attack_dir / "mobile-attack-18.1.json.gz"))
    assert again is not first and again.content_hash == first.content_hash
    assert again.counts() == first.counts()
    t = again.techniques[0]
    assert t.description == first.get_technique(t.attack_id).description  # type: ignore[union-attr]


def test_plain_json_and_gzip_share_the_content_hash(attack_settings: Settings, attack_dir: Path,
                                                    tmp_path: Path) -> None:
    plain = tmp_path / "ics.json"
    plain.write_bytes(gzip.decompress((attack_dir / "ics-attack-18.1.json.gz").read_bytes()))
    a = load_catalog(str(plain))
    b = load_catalog(str(attack_dir / "ics-attack-18.1.json.gz"))
    assert a.content_hash == b.content_hash and a.domain == "ics"


@pytest.mark.parametrize("cut", [100, 4_000_000])
def test_truncated_gzip_is_a_content_error(attack_settings: Settings, attack_dir: Path, tmp_path: Path,
                                           cut: int) -> None:
    bad = tmp_path / "enterprise-attack-broken.json.gz"
    bad.write_bytes((attack_dir / "enterprise-attack-18.1.json.gz").read_bytes()[:cut])
    with pytest.raises(ContentError, match="corrupt or truncated gzip"):
        load_catalog(str(bad))


def test_corrupt_gzip_is_a_content_error(attack_settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "x.json.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(2000))
    with pytest.raises(ContentError) as err:
        load_catalog(str(bad))
    assert str(bad) in str(err.value)


def test_json_that_is_not_attack(attack_settings: Settings, tmp_path: Path, shared_dir: Path) -> None:
    not_json = tmp_path / "a.json"
    not_json.write_text("{not json")
    with pytest.raises(ContentError, match="not JSON"):
        load_catalog(str(not_json))
    stix_example = next((shared_dir / "stix").rglob("*.json"))  # valid STIX, but not ATT&CK
    with pytest.raises(ContentError, match=r"not (an ATT&CK|a STIX) bundle"):
        load_catalog(str(stix_example))
    array = tmp_path / "b.json"
    array.write_text('{"type": "bundle", "objects": 3}')
    with pytest.raises(ContentError, match="not a STIX bundle"):
        load_catalog(str(array))


def test_unknown_domain_and_domain_mismatch(attack_settings: Settings, attack_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown ATT&CK domain 'cloud'") as err:
        load_catalog(domain="cloud")
    assert "enterprise, mobile, ics" in str(err.value)
    with pytest.raises(ContentError, match="holds ATT&CK ics, not mobile"):
        load_catalog(str(attack_dir / "ics-attack-18.1.json.gz"), domain="mobile")


def test_missing_file_names_the_setting(attack_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as err:
        load_catalog(str(tmp_path / "nope.json"))
    assert "DCO_ATTACK_SOURCE" in str(err.value)


def test_source_strings() -> None:
    spec = parse_source("taxii+https://u:p@cti.example.org/api1/collections/abc")
    assert (spec.kind, spec.location, spec.username, spec.password) == (
        "taxii", "https://cti.example.org/api1/collections/abc/", "u", "p")
    assert parse_source(URL).kind == "url" and parse_source("/x/y.json.gz").kind == "file"
    spec = parse_source("https://me:p%40ss@attack.example.org:8443/enterprise-attack.json")
    assert (spec.kind, spec.display, spec.username, spec.password) == (
        "url", "https://attack.example.org:8443/enterprise-attack.json", "me", "p@ss")
    with pytest.raises(ConfigError) as err:
        parse_source("taxii+https://u:secret@cti.example.org/api1/")
    assert "secret" not in str(err.value)
    with pytest.raises(ConfigError, match="names no collection"):
        parse_source("taxii+https://cti.example.org/api1/")
    with pytest.raises(ConfigError, match="unsupported"):
        parse_source("ftp://example.org/x.json")


def test_https_url_with_etag_and_offline_fallback(attack_settings: Settings, small_bundle_bytes: bytes,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        served.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=gzip.compress(small_bundle_bytes), headers={"ETag": '"v1"'})

    cat = load_catalog(URL, transport=httpx.MockTransport(handler))
    assert cat.source == URL and cat.group("APT29").technique_ids
    assert len(cat.group_techniques("G0016", via=("direct", "campaigns"))) == 119
    clear_memo()
    again = load_catalog(URL, transport=httpx.MockTransport(handler), refresh=True)
    assert served == [None, '"v1"'] and again.content_hash == cat.content_hash

    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route to host", request=request)

    clear_memo()
    assert load_catalog(URL, transport=httpx.MockTransport(offline), refresh=True).content_hash == cat.content_hash


def test_url_credentials_are_sent_but_never_shown(attack_settings: Settings) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(401)

    with pytest.raises(AuthError) as err:
        load_catalog("https://me:s3cret@attack.example.org/enterprise-attack.json",
                     transport=httpx.MockTransport(handler))
    assert seen == ["Basic " + base64.b64encode(b"me:s3cret").decode()]
    assert "s3cret" not in str(err.value) and "attack.example.org" in str(err.value)


def test_unreachable_url_without_cache(attack_settings: Settings) -> None:
    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route to host", request=request)

    with pytest.raises(ConnectorError) as err:
        load_catalog(URL, transport=httpx.MockTransport(offline))
    assert URL in str(err.value) and "DCO_ATTACK_SOURCE" in str(err.value) and err.value.retryable


def test_closed_port_on_loopback(attack_settings: Settings) -> None:
    url = "http://127.0.0.1:9/enterprise-attack.json"
    with pytest.raises(ConnectorError) as err:
        load_catalog(url)
    assert url in str(err.value) and "DCO_ATTACK_SOURCE" in str(err.value)


def test_http_errors_map_to_connector_errors(attack_settings: Settings) -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response({1: 503, 2: 404}.get(len(calls), 500))

    with pytest.raises(ConnectorError) as err:
        load_catalog(URL, transport=httpx.MockTransport(flaky))
    assert (err.value.status, err.value.retryable, len(calls)) == (404, False, 2)  # 503 retried, 404 final
    with pytest.raises(AuthError):
        load_catalog(URL, transport=httpx.MockTransport(lambda r: httpx.Response(401)))


def test_failed_load_never_corrupts_the_cache(attack_settings: Settings, attack_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "mobile-attack-18.1.json.gz"
    good.write_bytes((attack_dir / "mobile-attack-18.1.json.gz").read_bytes())
    first = load_catalog(str(good))
    cache = attack_settings.cache_dir / "attack"
    before = _snapshot(cache)
    # the same file replaced by a truncated download
    good.write_bytes(good.read_bytes()[:5000])
    os.utime(good, ns=(1, 1))
    clear_memo()
    with pytest.raises(ContentError):
        load_catalog(str(good))
    assert _snapshot(cache) == before
    # a crash while writing the cache leaves no partial file behind
    clear_memo()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("dcoflow.connectors.attack.cache.os.fsync", crash)
    cat = load_catalog(str(attack_dir / "ics-attack-18.1.json.gz"))  # builds; cache write fails
    assert cat.domain == "ics"
    assert _snapshot(cache) == before
    clear_memo()
    monkeypatch.undo()
    good.write_bytes((attack_dir / "mobile-attack-18.1.json.gz").read_bytes())
    assert load_catalog(str(good)).content_hash == first.content_hash


def test_corrupt_cache_file_is_rebuilt(attack_settings: Settings, attack_dir: Path) -> None:
    src = str(attack_dir / "ics-attack-18.1.json.gz")
    cat = load_catalog(src)
    for p in (attack_settings.cache_dir / "attack").glob("*.catalog.pickle"):
        p.write_bytes(p.read_bytes()[:1000])
    clear_memo()
    assert load_catalog(src).counts() == cat.counts()
    assert attack_connector._by_hash  # reloaded and memoised again
