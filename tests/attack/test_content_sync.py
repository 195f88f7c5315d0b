"""sync-content against httpx.MockTransport serving ATT&CK bundles and GitHub zip archives."""

from __future__ import annotations

import gzip
import io
import stat
import zipfile
from pathlib import Path

import httpx
import orjson
import pytest

from dcoflow.connectors.attack import load_catalog
from dcoflow.connectors.content_sync import ContentSync, sync_content_dir
from dcoflow.core.errors import AuthError, ConnectorError, ContentError, ValidationError
from dcoflow.core.settings import Settings

SIGMA_RULE = b"title: Test\nid: 0e0c0a3a-1111-4c1e-8f5e-2c6f7b0d1a11\ntags:\n  - attack.t1059.001\n"


def _zip(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name in links:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _github(small_bundle_bytes: bytes, archives: dict[str, bytes]) -> httpx.MockTransport:
    """Routes as GitHub serves them: raw bundle files, releases/latest, zipball (302 → codeload)."""

    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url.startswith("https://raw.githubusercontent.com/mitre-attack/attack-stix-data/master/"):
            if url.endswith("enterprise-attack/enterprise-attack.json"):
                return httpx.Response(200, content=small_bundle_bytes)
            return httpx.Response(404)
        if url == "https://api.github.com/repos/SigmaHQ/sigma/releases/latest":
            return httpx.Response(200, json={"tag_name": "r2026-08-01", "zipball_url": "unused"})
        if url.startswith("https://api.github.com/repos/") and "/zipball/" in url:
            repo, ref = url.split("/repos/")[1].split("/zipball/")
            return httpx.Response(302, headers={"Location": f"https://codeload.github.com/{repo}/legacy.zip/{ref}"})
        if url.startswith("https://codeload.github.com/"):
            repo = "/".join(url.split("/")[3:5])
            return httpx.Response(200, content=archives[repo])
        return httpx.Response(404)

    return httpx.MockTransport(handler)


def test_sync_fills_the_content_folder(tmp_path: Path, small_bundle_bytes: bytes,
                                       attack_settings: Settings) -> None:
    archives = {
        "SigmaHQ/sigma": _zip({"SigmaHQ-sigma-abc123/rules/windows/proc.yml": SIGMA_RULE,
                               "SigmaHQ-sigma-abc123/LICENSE": b"DRL 1.1",
                               "SigmaHQ-sigma-abc123/tests/ignored.py": b"x"}),
        "redcanaryco/atomic-red-team": _zip({
            "redcanaryco-atomic-red-team-def456/atomics/T1059.001/T1059.001.yaml": b"attack_technique: T1059.001\n",
            "redcanaryco-atomic-red-team-def456/docs/ignored.md": b"x"}),
    }
    content = tmp_path / "content"
    (content / "sigma").mkdir(parents=True)
    (content / "sigma" / "stale.yml").write_text("old")
    results = sync_content_dir(content, domains=("enterprise",), backoff_s=0,
                               transport=_github(small_bundle_bytes, archives))
    assert [r.part for r in results] == ["attack", "sigma", "atomics"]
    bundle = content / "attack" / "enterprise-attack-18.1.json.gz"
    assert orjson.loads(gzip.decompress(bundle.read_bytes()))["objects"]
    assert (content / "sigma" / "rules" / "windows" / "proc.yml").read_bytes() == SIGMA_RULE
    assert not (content / "sigma" / "stale.yml").exists() and not (content / "sigma" / "tests").exists()
    assert "r2026-08-01" in (content / "sigma" / "SOURCE.txt").read_text()
    assert (content / "atomics" / "atomics" / "T1059.001" / "T1059.001.yaml").is_file()
    assert not list(content.glob(".*"))  # no temporary folders left
    # the synced folder is a usable DCO_CONTENT_DIR for the catalog
    assert load_catalog(str(bundle)).group("APT29").technique_ids


@pytest.mark.parametrize("bad", [
    {"x-abc/../../evil.yml": b"x"},
    {"x-abc/rules/link.yml": b"/etc/passwd"},
])
def test_unsafe_archives_are_refused_and_old_content_kept(tmp_path: Path, small_bundle_bytes: bytes,
                                                          bad: dict[str, bytes]) -> None:
    links = ("x-abc/rules/link.yml",)
    content = tmp_path / "content"
    (content / "sigma" / "rules").mkdir(parents=True)
    (content / "sigma" / "rules" / "keep.yml").write_text("kept")
    transport = _github(small_bundle_bytes, {"SigmaHQ/sigma": _zip(bad, links)})
    with ContentSync(content, transport=transport, backoff_s=0) as sync, pytest.raises(ContentError):
        sync.sync_archive("sigma", "r1")
    assert (content / "sigma" / "rules" / "keep.yml").read_text() == "kept"
    assert not (tmp_path / "evil.yml").exists() and not list(content.glob(".*"))


def test_oversized_member_and_bad_inputs(tmp_path: Path, small_bundle_bytes: bytes) -> None:
    big = _zip({"x-abc/rules/big.yml": b"a" * 10_000})
    transport = _github(small_bundle_bytes, {"SigmaHQ/sigma": big, "redcanaryco/atomic-red-team": b"not a zip"})
    with ContentSync(tmp_path, transport=transport, backoff_s=0, max_member_bytes=1000) as sync:
        with pytest.raises(ContentError, match="over the limit"):
            sync.sync_archive("sigma", "r1")
        with pytest.raises(ContentError, match="not a zip"):
            sync.sync_archive("atomics", "master")
        with pytest.raises(ValidationError):
            sync.sync_attack("cloud")
        with pytest.raises(Exception, match="404"):
            sync.sync_attack("mobile")


def test_downloads_share_the_connector_retry_and_error_policy(tmp_path: Path, small_bundle_bytes: bytes) -> None:
    """5xx is retried; a final 4xx is a ConnectorError naming the URL; 401 is an AuthError at once."""
    calls: list[str] = []
    github = _github(small_bundle_bytes, {})

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(503) if len(calls) == 1 else github.handle_request(request)

    with ContentSync(tmp_path, transport=httpx.MockTransport(flaky), backoff_s=0) as sync:
        assert sync.sync_attack("enterprise").detail.startswith("enterprise 18.1")
        assert len(calls) == 2
        with pytest.raises(ConnectorError) as err:
            sync.sync_attack("mobile")
        assert err.value.status == 404 and not err.value.retryable
        assert "mobile-attack/mobile-attack.json" in str(err.value)
    refused = httpx.MockTransport(lambda r: httpx.Response(401))
    with ContentSync(tmp_path, transport=refused, backoff_s=0) as sync, pytest.raises(AuthError):
        sync.latest_release("SigmaHQ/sigma")


def test_a_release_answer_without_a_tag_is_a_connector_error(tmp_path: Path) -> None:
    """Not JSON, or JSON without tag_name: a ConnectorError naming content-sync, not a raw decode error."""
    for body in (b"<html>rate limited</html>", b"[]", b"{}"):
        transport = httpx.MockTransport(lambda r, body=body: httpx.Response(200, content=body))
        with ContentSync(tmp_path, transport=transport, backoff_s=0) as sync, pytest.raises(ConnectorError) as err:
            sync.latest_release("SigmaHQ/sigma")
        assert err.value.system == "content-sync"
