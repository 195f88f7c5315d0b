"""A real medallion 3.0.0 TAXII server on loopback (memory backend) with a writable, a read-only and a
write-only collection, and a DCO with real stored evidence: the demo operation and a local Sigma hunt over
a real Security-Datasets recording, recorded with the conduct phase's own functions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.attack import Catalog
from dcoflow.models.hunting import HuntOutcome, HuntSelection
from dcoflow.models.operation import DcoSpec, DcoState
from dcoflow.models.repository.operation import create_operation, transition
from dcoflow.tasks.conduct.hunt_record import record_hunt
from dcoflow.tasks.conduct.local_hunt import run_local_hunt

TAXII = "application/taxii+json;version=2.1"
WRITABLE = "4f0a7d1e-6b2c-4c55-9f3e-1d2a3b4c5d01"
READ_ONLY = "4f0a7d1e-6b2c-4c55-9f3e-1d2a3b4c5d02"
WRITE_ONLY = "4f0a7d1e-6b2c-4c55-9f3e-1d2a3b4c5d03"
SCRATCH = "4f0a7d1e-6b2c-4c55-9f3e-1d2a3b4c5d04"
FLOW = "4f0a7d1e-6b2c-4c55-9f3e-1d2a3b4c5d05"
USER, PASSWORD = "publisher", "Password9"

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "flows" / "demo" / "apt29-purple-team.yaml"
LSASS_ZIP = "security-datasets/data/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip"


def _collection(cid: str, title: str, *, read: bool, write: bool) -> dict[str, object]:
    return {"id": cid, "title": title, "can_read": read, "can_write": write,
            "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}


@pytest.fixture(scope="module")
def taxii_server(medallion: Callable[..., str]) -> str:
    """The API root URL of a fresh medallion server for this module."""
    data = {
        "/discovery": {"title": "dcoflow publish test", "api_roots": []},
        "dco": {
            "information": {"title": "DCO sharing", "versions": [TAXII], "max_content_length": 200_000},
            "status": [],
            "collections": [
                _collection(WRITABLE, "DCO results", read=True, write=True),
                _collection(READ_ONLY, "Partner feed", read=True, write=False),
                _collection(WRITE_ONLY, "Inbox", read=False, write=True),
                _collection(SCRATCH, "Scratch", read=True, write=True),
                _collection(FLOW, "Flow runs", read=True, write=True),
            ],
        },
    }
    return medallion(data, {USER: PASSWORD}, 50) + "/dco/"  # small pages: paging is exercised


@pytest.fixture(scope="module")
def lsass_hunt(shared_dir: Path) -> HuntOutcome:
    """A real local hunt: the T1003 Sigma rules over the Security-Datasets LSASS dump recording."""
    return run_local_hunt(shared_dir / "sigma" / "rules" / "windows", shared_dir / LSASS_ZIP,
                          HuntSelection(techniques=["T1003"]))


def record_demo_hunt(spec: DcoSpec, outcome: HuntOutcome, catalog: Catalog) -> str:
    """Store ``spec`` as a DCO and record the hunt ``outcome`` as its evidence."""
    with session_scope() as s:
        op = create_operation(s, spec, "coordinator")
        for state in (DcoState.PLANNED, DcoState.APPROVED):  # recording a hunt against a DCO needs its approval
            transition(s, op, state, "coordinator", "approved for the test")
        dco_id = op.id
    with session_scope() as s:
        record_hunt(s, dco_id, outcome, hunt_key="lsass-comsvcs", catalog=catalog)
    return dco_id


@pytest.fixture()
def demo_spec() -> DcoSpec:
    return load_operation_file(DEMO)


@pytest.fixture()
def hunted_dco(settings: Settings, lsass_hunt: HuntOutcome, catalog: Catalog, demo_spec: DcoSpec) -> str:
    return record_demo_hunt(demo_spec, lsass_hunt, catalog)
