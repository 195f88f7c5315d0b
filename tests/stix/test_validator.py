"""Bundles the OASIS stix2-validator accepts: a DCO with a real local hunt (processes, files, users, from a
Security-Datasets recording) and an emulation outcome with telemetry exports with zero validator errors;
process SCOs carry a UUIDv4 stored once per natural key (a re-recorded hunt writes the same ids); a file's id
uses one hash in §2.9's order, as the OASIS stix2 library computes it; ATT&CK objects go out as published."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stix2
from stix2validator import ValidationOptions, validate_instance

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.attack import Catalog
from dcoflow.models.emulation import EmulationOutcome, Outcome
from dcoflow.models.hunting import HuntOutcome, HuntSelection
from dcoflow.models.operation import DcoState
from dcoflow.models.repository.operation import create_operation, transition
from dcoflow.models.repository.stix_store import latest_objects, put_objects
from dcoflow.models.stix.common import DcoContext
from dcoflow.models.stix.emulation_objects import outcome_objects
from dcoflow.models.stix.ids import deterministic_sco_id
from dcoflow.tasks.conduct.hunt_record import record_hunt
from dcoflow.tasks.conduct.local_hunt import run_local_hunt
from dcoflow.tasks.reporting.stix_export import build_dco_bundle

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "flows" / "demo" / "apt29-purple-team.yaml"
LSASS_ZIP = "security-datasets/data/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip"
MD5, SHA1 = "0" * 31 + "1", "a" * 40
SHA256 = "b" * 64


@pytest.fixture(scope="module")
def lsass_hunt(shared_dir: Path) -> HuntOutcome:
    return run_local_hunt(shared_dir / "sigma" / "rules" / "windows", shared_dir / LSASS_ZIP,
                          HuntSelection(techniques=["T1003"]))


def _errors(bundle: dict[str, Any]) -> list[str]:
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    return [str(e) for e in result.errors]


@pytest.fixture()
def dco(settings: Settings, lsass_hunt: HuntOutcome, catalog: Catalog) -> str:
    with session_scope() as s:
        op = create_operation(s, load_operation_file(DEMO), "coordinator")
        for state in (DcoState.PLANNED, DcoState.APPROVED):  # recording a hunt needs the DCO approved
            transition(s, op, state, "coordinator", "approved for the test")
        dco_id = op.id
    with session_scope() as s:
        record_hunt(s, dco_id, lsass_hunt, hunt_key="lsass", catalog=catalog)
    with session_scope() as s:  # an emulation outcome whose telemetry names a process and a hashed file
        op_ctx = DcoContext(dco_id, ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",))
        now = datetime(2026, 12, 1, 10, tzinfo=UTC)
        row = EmulationOutcome(dco_id=dco_id, step_id="step-1", technique_id="T1003.001", tool="EDR",
                               outcome=Outcome.ALERTED, operator="amy", recorded_at=now, attack_start=now,
                               telemetry=[{"type": "process", "pid": 4242, "command_line": "rundll32 comsvcs.dll"},
                                          {"type": "file", "name": "lsass.dmp",
                                           "hashes": {"SHA-256": SHA256, "MD5": MD5, "SHA-1": SHA1}}])
        technique = catalog.technique("T1003.001")
        put_objects(s, outcome_objects(op_ctx, row, attack_pattern_ref=technique.stix_id), dco_id)
    return dco_id


def test_dco_bundle_has_no_validator_errors(dco: str, catalog: Catalog) -> None:
    with session_scope() as s:
        bundle = build_dco_bundle(s, dco, catalog)
    kinds = {o["type"] for o in bundle["objects"]}
    assert {"process", "file", "attack-pattern", "sighting", "observed-data", "indicator"} <= kinds
    assert _errors(bundle) == []


def test_process_ids_are_uuid4_and_stable_across_a_rerun(dco: str, catalog: Catalog,
                                                         lsass_hunt: HuntOutcome) -> None:
    with session_scope() as s:
        before = {o["id"]: o for o in latest_objects(s, dco, ["process", "observed-data"])}
    processes = [i for i, o in before.items() if o["type"] == "process"]
    assert len(processes) > 2
    assert all(uuid.UUID(i.split("--", 1)[1]).version == 4 for i in processes)
    assert all("__dco_natural_key" not in o for o in before.values())
    # observed-data point at the stored ids, and parent_ref resolves among them
    refs = {r for o in before.values() if o["type"] == "observed-data" for r in o["object_refs"]}
    assert set(processes) <= refs
    with session_scope() as s:  # a retried recording: the same ids, no new objects or versions
        record_hunt(s, dco, lsass_hunt, hunt_key="lsass", catalog=catalog)
    with session_scope() as s:
        after = {o["id"]: o for o in latest_objects(s, dco, ["process", "observed-data"])}
    assert after == before


def test_file_id_uses_one_hash_in_the_spec_order() -> None:
    both = {"name": "lsass.dmp", "hashes": {"SHA-256": SHA256, "MD5": MD5, "SHA-1": SHA1}}
    md5_only = {"name": "lsass.dmp", "hashes": {"MD5": MD5}}
    ours = deterministic_sco_id("file", both)
    assert ours == deterministic_sco_id("file", md5_only)  # one file, one id whatever else was hashed
    assert ours == stix2.File(**both).id  # the OASIS library's §2.9 computation
    sha1_sha256 = {"name": "x", "hashes": {"SHA-256": SHA256, "SHA-1": SHA1}}
    assert deterministic_sco_id("file", sha1_sha256) == stix2.File(**sha1_sha256).id
    for kind, props in [("user-account", {"user_id": "CORP\\amy", "account_login": "amy"}),
                        ("domain-name", {"value": "evil.example"}), ("directory", {"path": "C:\\Windows"})]:
        assert deterministic_sco_id(kind, props) == stix2.parse({"type": kind, "spec_version": "2.1", **props}).id


def test_attack_objects_go_out_as_published(dco: str, catalog: Catalog, shared_dir: Path) -> None:
    with session_scope() as s:
        bundle = build_dco_bundle(s, dco, catalog)
    with gzip.open(shared_dir / "attack" / "enterprise-attack-18.1.json.gz") as fh:
        raw = json.loads(fh.read())
    published = {o["id"]: o for o in raw["objects"]}
    attack = [o for o in bundle["objects"] if o["type"] == "attack-pattern"]
    assert attack and all(o == published[o["id"]] for o in attack)
    mitre = {r for o in attack for r in (o["created_by_ref"], *o["object_marking_refs"])}
    assert mitre <= {o["id"] for o in bundle["objects"]}  # MITRE's identity and marking come along
