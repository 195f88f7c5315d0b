"""Loading ATT&CK from a TAXII 2.1 collection served by a real medallion server on loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from dcoflow.connectors.attack import clear_memo, load_catalog
from dcoflow.core.errors import AuthError, ConnectorError
from dcoflow.core.settings import Settings

COLLECTION = "9a5d3a8e-7f1b-4c1e-8f5e-2c6f7b0d1a11"
TAXII = "application/taxii+json;version=2.1"


@pytest.fixture(scope="module")
def medallion_root(medallion: Callable[..., str], small_objects: list[dict[str, Any]]) -> str:
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
    base = medallion(data, {"admin": "Password0", "reader": "Password1"}, 100)
    # TAXII 2.1 §5.5 Add Objects: POST an envelope to the collection's objects endpoint
    resp = httpx.post(f"{base}/api1/collections/{COLLECTION}/objects/",
                      content=orjson.dumps({"objects": small_objects}),
                      headers={"Content-Type": TAXII, "Accept": TAXII},
                      auth=("admin", "Password0"), timeout=60)
    assert resp.status_code == 202, resp.text
    assert resp.json()["success_count"] == len(small_objects)
    return base


def test_load_from_taxii_collection(attack_settings: Settings, medallion_root: str,
                                    small_objects: list[dict[str, Any]]) -> None:
    host = medallion_root.split("://")[1]
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


def test_taxii_wrong_password_and_unknown_collection(attack_settings: Settings, medallion_root: str) -> None:
    host = medallion_root.split("://")[1]
    with pytest.raises(AuthError):
        load_catalog(f"taxii+http://reader:wrong@{host}/api1/collections/{COLLECTION}/")
    with pytest.raises(ConnectorError) as err:
        load_catalog(f"taxii+http://reader:Password1@{host}/api1/collections/00000000-0000-4000-8000-000000000000/")
    assert err.value.status == 404 and not err.value.retryable
