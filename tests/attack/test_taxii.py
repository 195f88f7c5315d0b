"""Loading ATT&CK from a TAXII 2.1 collection served by a real medallion server on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from connectors.attack import clear_memo, load_catalog
from core.errors import AuthError, ConnectorError
from core.settings import Settings

COLLECTION = "9a5d3a8e-7f1b-4c1e-8f5e-2c6f7b0d1a11"
TAXII = "application/taxii+json;version=2.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def medallion(tmp_path_factory: pytest.TempPathFactory, small_objects: list[dict[str, Any]]) -> Iterator[str]:
    """A medallion 3.0.0 server (memory backend) whose collection holds the ATT&CK subset."""
    work = tmp_path_factory.mktemp("taxii")
    data = {
        "/discovery": {"title": "dcoflow test TAXII", "api_roots": []},
        "api1": {
            "information": {"title": "ATT&CK", "versions": [TAXII], "max_content_length": 50_000_000},
            "status": [],
            "collections": [{
                "id": COLLECTION, "title": "Enterprise ATT&CK subset", "can_read": True, "can_write": True,
                "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": [],
            }],
        },
    }
    (work / "data.json").write_text(json.dumps(data))
    config = {
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": str(work / "data.json")},
        "users": {"admin": "Password0", "reader": "Password1"},
        "taxii": {"max_page_size": 100},
    }
    (work / "config.json").write_text(json.dumps(config))
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "medallion"), "--host", "127.0.0.1", "--port", str(port),
         str(work / "config.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/taxii2/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("medallion did not start")
        # TAXII 2.1 §5.5 Add Objects: POST an envelope to the collection's objects endpoint
        resp = httpx.post(f"{base}/api1/collections/{COLLECTION}/objects/",
                          content=orjson.dumps({"objects": small_objects}),
                          headers={"Content-Type": TAXII, "Accept": TAXII},
                          auth=("admin", "Password0"), timeout=60)
        assert resp.status_code == 202, resp.text
        assert resp.json()["success_count"] == len(small_objects)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_load_from_taxii_collection(attack_settings: Settings, medallion: str,
                                    small_objects: list[dict[str, Any]]) -> None:
    host = medallion.split("://")[1]
    source = f"taxii+http://reader:Password1@{host}/api1/collections/{COLLECTION}/"
    cat = load_catalog(source)
    assert (cat.domain, cat.version) == ("enterprise", "18.1")
    assert [t.shortname for t in cat.tactics][:2] == ["reconnaissance", "resource-development"]
    assert len(cat.group_techniques("APT29", via=("direct", "campaigns"))) == 119  # paged: 100 per page
    assert cat.resolve("T1086").attack_id == "T1059.001"
    assert "Password1" not in cat.source  # credentials never reach messages or cache keys
    clear_memo()
    again = load_catalog(source, refresh=True)
    assert again.content_hash == cat.content_hash  # same objects, same hash, loaded from the cache


def test_taxii_wrong_password_and_unknown_collection(attack_settings: Settings, medallion: str) -> None:
    host = medallion.split("://")[1]
    with pytest.raises(AuthError):
        load_catalog(f"taxii+http://reader:wrong@{host}/api1/collections/{COLLECTION}/")
    with pytest.raises(ConnectorError) as err:
        load_catalog(f"taxii+http://reader:Password1@{host}/api1/collections/00000000-0000-4000-8000-000000000000/")
    assert err.value.status == 404 and not err.value.retryable
