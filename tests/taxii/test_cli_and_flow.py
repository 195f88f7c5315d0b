"""`dco publish` and the ``publish-dco-taxii`` flow run one function (tasks/reporting/taxii_publish.py
``publish_to_taxii``): the same DCO published by each into its own collection leaves the same objects,
version for version, and both take the server and credentials from the DCO_TAXII_* settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from dcoflow.connectors.taxii import TaxiiClient
from dcoflow.core.settings import get_settings
from dcoflow.models.attack import Catalog

from .conftest import PASSWORD, USER, _collection

BY_CLI = "7c1e0a2b-3d4f-4a5b-8c6d-7e8f9a0b1c01"
BY_FLOW = "7c1e0a2b-3d4f-4a5b-8c6d-7e8f9a0b1c02"
STATEMENT = "NATO UNCLASSIFIED — REL TO DCO CELL"


def _held(client: TaxiiClient, collection: str) -> set[tuple[str, str]]:
    return {(o["id"], str(o.get("modified") or o.get("created") or "")) for o in client.get_objects(collection)}


@pytest.mark.prefect
def test_cli_and_flow_publish_the_same_objects(hunted_dco: str, catalog: Catalog, prefect_harness: None,
                                               medallion: Callable[..., str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import dcoflow.connectors.attack as attack_connector
    from dcoflow.flows.cli import app
    from dcoflow.flows.publish import publish_dco_taxii

    data: dict[str, Any] = {"/discovery": {"title": "cli and flow", "api_roots": []}, "dco": {
        "information": {"title": "DCO", "versions": ["application/taxii+json;version=2.1"],
                        "max_content_length": 200_000},
        "status": [], "collections": [_collection(BY_CLI, "cli", read=True, write=True),
                                      _collection(BY_FLOW, "flow", read=True, write=True)]}}
    root = medallion(data, {USER: PASSWORD}) + "/dco/"
    monkeypatch.setattr(attack_connector, "load_catalog", lambda source=None, **_: catalog)
    for name, value in {"DCO_TAXII_URL": root, "DCO_TAXII_USER": USER, "DCO_TAXII_PASSWORD": PASSWORD}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()

    out = CliRunner().invoke(app, ["publish", hunted_dco, "--collection", BY_CLI, "--releasable", STATEMENT,
                                   "--json"])
    assert out.exit_code == 0, out.output
    by_cli = json.loads(out.stdout)
    by_flow = publish_dco_taxii(hunted_dco, collection_id=BY_FLOW, releasable=[STATEMENT])
    counts = ("candidates", "sent", "skipped", "refused", "failed", "dco_id", "api_root")
    assert {k: by_cli[k] for k in counts} == {k: by_flow[k] for k in counts}
    assert by_cli["sent"] > 0 and by_cli["failed"] == 0
    with TaxiiClient(root, username=USER, password=PASSWORD) as client:
        assert _held(client, BY_CLI) == _held(client, BY_FLOW)
