"""The IR commands read a real TAXII 2.1 collection (medallion 3.0.0 on loopback): an incident with its
indicators for `dco ir create taxii+http://…`, and indicators for `dco ir sweep --indicators taxii+http://…`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dcoflow.connectors.taxii import TaxiiClient
from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.repository.operation import get_operation
from dcoflow.tasks.conduct.ir_sweep import run_sweep
from dcoflow.tasks.plan.ir_incident import create_ir_dco, load_incident

from .incident_bundle import INCIDENT, approve, incident_bundle

COLLECTION = "6a0b8e2f-1c3d-4e5f-8a9b-0c1d2e3f4a01"
USER, PASSWORD = "responder", "Password9"
LSASS_ZIP = "security-datasets/data/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip"


@pytest.fixture(scope="module")
def api_root(medallion: Callable[..., str]) -> str:
    data = {
        "/discovery": {"title": "IR sharing", "api_roots": []},
        "ir": {"information": {"title": "IR", "versions": ["application/taxii+json;version=2.1"],
                               "max_content_length": 1_000_000},
               "status": [],
               "collections": [{"id": COLLECTION, "title": "Incident 4711", "can_read": True, "can_write": True,
                                "media_types": ["application/stix+json;version=2.1"], "objects": [],
                                "manifest": []}]},
    }
    return medallion(data, {USER: PASSWORD}, 100) + "/ir/"


def test_incident_and_indicators_from_a_taxii_collection(settings: Settings, api_root: str,
                                                         shared_dir: Path) -> None:
    with TaxiiClient(api_root, username=USER, password=PASSWORD) as client:
        assert client.add_objects(COLLECTION, incident_bundle()["objects"]).failure_count == 0
    scheme, rest = api_root.split("://", 1)
    source = f"taxii+{scheme}://{USER}:{PASSWORD}@{rest}collections/{COLLECTION}/"
    imported = load_incident(source)
    assert imported.link.ref == INCIDENT and imported.techniques == ["T1003.001", "T1059.001"]
    with session_scope() as s:
        dco = create_ir_dco(s, imported).dco_id
        approve(s, dco)
    with session_scope() as s:
        assert get_operation(s, dco).dco.scope.hosts == ["wkst-01"]
        result = run_sweep(s, source, shared_dir / LSASS_ZIP, dco=dco)
    assert result.counts() == {"found": 1, "not-evaluable": 1} and result.sightings == 1
