"""TaxiiClient against a real medallion 3.0.0 server on loopback: discovery, collections, paging,
add objects with status, and the errors that name server, collection and status."""

from __future__ import annotations

from typing import Any

import pytest

from dcoflow.connectors.taxii import TaxiiClient
from dcoflow.core.errors import AuthError, ConnectorError
from dcoflow.models.stix.ids import stix_id

from .conftest import FLOW, PASSWORD, READ_ONLY, SCRATCH, USER, WRITABLE, WRITE_ONLY


def _indicators(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"type": "indicator", "spec_version": "2.1", "id": stix_id("indicator", tag, i),
             "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
             "name": f"{tag} {i}", "pattern": f"[ipv4-addr:value = '10.0.0.{i}']", "pattern_type": "stix",
             "valid_from": "2026-01-01T00:00:00Z"} for i in range(n)]


def test_discovery_and_collections(taxii_server: str) -> None:
    with TaxiiClient(taxii_server, username=USER, password=PASSWORD) as client:
        assert client.discovery()["title"] == "dcoflow publish test"
        assert client.api_root()["max_content_length"] == 200_000
        cols = {c["id"]: c for c in client.collections()}
        assert set(cols) == {WRITABLE, READ_ONLY, WRITE_ONLY, SCRATCH, FLOW}
        assert client.collection(READ_ONLY)["can_write"] is False
        with pytest.raises(ConnectorError) as err:
            client.collection("00000000-0000-4000-8000-000000000000")
        assert err.value.status == 404 and taxii_server in err.value.message


def test_add_objects_poll_status_and_page_back(taxii_server: str) -> None:
    objects = _indicators(120, "client-test")
    with TaxiiClient(taxii_server, username=USER, password=PASSWORD) as client:
        status = client.add_objects(SCRATCH, objects)
        assert status.complete and status.success_count == 120 and not status.failures
        assert client.status(status.id).success_count == 120
        # paging: the server hands out at most 50 per page; the iterator follows more/next
        back = list(client.get_objects(SCRATCH, types=["indicator"], limit=50))
        assert {o["id"] for o in objects} <= {o["id"] for o in back}
        some = [o["id"] for o in objects[:3]]
        assert {o["id"] for o in client.get_objects(SCRATCH, ids=some)} == set(some)
        assert list(client.get_objects(SCRATCH, added_after="2999-01-01T00:00:00Z")) == []
        manifest = list(client.manifest(SCRATCH, ids=some, versions="all"))
        assert {(m["id"], m["version"]) for m in manifest} == {(i, "2026-01-01T00:00:00.000Z") for i in some}
        # the same (id, modified) again: the server reports each object as a failure, with its reason
        again = client.add_objects(SCRATCH, objects[:2])
        assert again.failure_count == 2 and {f.id for f in again.failures} == set(some[:2])
        assert all(f.message for f in again.failures)


def test_errors_name_server_collection_and_reason(taxii_server: str) -> None:
    with TaxiiClient(taxii_server, username=USER, password="wrong", retries=0) as client:
        with pytest.raises(AuthError) as auth:
            client.collections()
        assert auth.value.status == 401
    with TaxiiClient(taxii_server, username=USER, password=PASSWORD) as client:
        with pytest.raises(AuthError) as ro:
            client.add_objects(READ_ONLY, _indicators(1, "read-only"))
        assert ro.value.status == 403 and not ro.value.retryable
        assert READ_ONLY in ro.value.message and taxii_server in ro.value.message
        assert "not writable" in ro.value.message
        with pytest.raises(AuthError) as wo:
            list(client.get_objects(WRITE_ONLY))
        assert "not readable" in wo.value.message
        with pytest.raises(ConnectorError) as missing:
            client.add_objects("00000000-0000-4000-8000-000000000000", _indicators(1, "missing"))
        assert missing.value.status == 404 and "00000000-0000-4000-8000-000000000000" in missing.value.message
    with pytest.raises(AuthError):
        TaxiiClient(taxii_server, username=USER)
