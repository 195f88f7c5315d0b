"""Publishing a DCO's STIX bundle to a real medallion TAXII server: round trip, idempotent re-publication,
incremental evidence, markings (TLP:RED refused, TLP:AMBER+STRICT only when allowed), non-writable and
write-only collections, and the `dco publish` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import stix2
from typer.testing import CliRunner

from dcoflow.connectors.taxii import TaxiiClient
from dcoflow.core.db import session_scope
from dcoflow.core.errors import AuthError, ValidationError
from dcoflow.core.settings import Settings, get_settings
from dcoflow.models.attack import Catalog
from dcoflow.models.hunting import HuntOutcome
from dcoflow.models.operation import DcoSpec, Marking
from dcoflow.models.repository.operation import create_operation
from dcoflow.models.repository.stix_store import latest_objects, put_objects
from dcoflow.models.stix.common import DcoContext
from dcoflow.models.stix.ids import stix_id
from dcoflow.models.stix.markings import TLP2_IDS, ReleasePolicy, Tlp
from dcoflow.tasks.conduct.triage import triage_hit
from dcoflow.tasks.reporting.stix_export import build_dco_bundle
from dcoflow.tasks.reporting.taxii_publish import publish_dco

from .conftest import FLOW, PASSWORD, READ_ONLY, SCRATCH, USER, WRITABLE, WRITE_ONLY, record_demo_hunt

REPORT_TYPE = "report"
DEMO_STATEMENT = "NATO UNCLASSIFIED — REL TO DCO CELL"  # the demo DCO's classification and releasability
CLEARED = ReleasePolicy(statements=frozenset({DEMO_STATEMENT}))


@pytest.fixture()
def client(taxii_server: str) -> Any:
    with TaxiiClient(taxii_server, username=USER, password=PASSWORD) as c:
        yield c


def _held(client: TaxiiClient, collection: str, ids: list[str]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for start in range(0, len(ids), 40):
        out |= {(m["id"], m["version"]) for m in client.manifest(collection, ids=ids[start:start + 40],
                                                                  versions="all")}
    return out


def test_publish_round_trip_then_nothing_twice(hunted_dco: str, catalog: Catalog, client: TaxiiClient) -> None:
    with session_scope() as s:
        first = publish_dco(s, hunted_dco, catalog, client, WRITABLE, chunk_size=25, policy=CLEARED)
        expected = {o["id"] for o in build_dco_bundle(s, hunted_dco, catalog)["objects"]}
    assert first.failed == 0 and first.refused == 0 and first.skipped == 0
    assert first.sent == first.candidates == len(expected) and first.chunks > 1
    # read back over TAXII: every object of the bundle, valid STIX 2.1, the report resolving to them
    back = {o["id"]: o for o in client.get_objects(WRITABLE)}
    assert set(back) == expected
    for obj in back.values():
        stix2.parse(obj, allow_custom=True, version="2.1")
    report = back[stix_id("report", hunted_dco)]
    assert set(report["object_refs"]) <= set(back)
    assert {"sighting", "indicator", "observed-data", "attack-pattern"} <= {o["type"] for o in back.values()}
    assert all(o.get("x_dco_id") == hunted_dco for o in back.values() if o["type"] in ("sighting", "indicator"))

    with session_scope() as s:  # re-publishing an unchanged DCO sends nothing
        again = publish_dco(s, hunted_dco, catalog, client, WRITABLE, policy=CLEARED)
    assert (again.sent, again.failed, again.chunks) == (0, 0, 0) and again.skipped == first.sent

    with session_scope() as s:  # new evidence: only the verdict's opinion and a new report version go
        sighting = next(o["id"] for o in latest_objects(s, hunted_dco, ["sighting"]))
        triage_hit(s, sighting, "true-positive", "alice", "comsvcs MiniDump of LSASS",
                   at=datetime.now(UTC))
    with session_scope() as s:
        third = publish_dco(s, hunted_dco, catalog, client, WRITABLE, policy=CLEARED)
        opinion = next(o for o in latest_objects(s, hunted_dco, ["opinion"]))
    assert third.failed == 0 and third.sent == 2 and third.skipped == first.sent - 1  # all but the old report
    versions = {v for i, v in _held(client, WRITABLE, [report["id"]])}
    assert len(versions) == 2  # the report's history is kept on the server
    assert (opinion["id"], opinion["modified"]) in _held(client, WRITABLE, [opinion["id"]])


def test_tlp_red_dco_is_refused(settings: Settings, lsass_hunt: HuntOutcome, catalog: Catalog,
                                demo_spec: DcoSpec, client: TaxiiClient) -> None:
    red = demo_spec.model_copy(update={"name": "Red team exercise", "marking": Marking(tlp=Tlp.RED)})
    dco = record_demo_hunt(red, lsass_hunt, catalog)
    with session_scope() as s, pytest.raises(ValidationError) as err:
        publish_dco(s, dco, catalog, client, SCRATCH, policy=CLEARED)
    assert "TLP:RED" in err.value.message and err.value.field == "marking.tlp"
    assert not _held(client, SCRATCH, [stix_id("report", dco)])


def test_amber_strict_needs_the_flag(settings: Settings, catalog: Catalog, demo_spec: DcoSpec,
                                     client: TaxiiClient) -> None:
    strict = demo_spec.model_copy(update={"name": "Strict exercise", "marking": Marking(tlp=Tlp.AMBER_STRICT)})
    with session_scope() as s:
        dco = create_operation(s, strict, "coordinator").id
    with session_scope() as s, pytest.raises(ValidationError) as err:
        publish_dco(s, dco, catalog, client, SCRATCH, policy=CLEARED)
    assert "AMBER+STRICT" in err.value.message and "allow-amber-strict" in (err.value.hint or "")
    with session_scope() as s:
        done = publish_dco(s, dco, catalog, client, SCRATCH, allow_amber_strict=True,
                           policy=ReleasePolicy(Tlp.AMBER_STRICT, frozenset({DEMO_STATEMENT})))
    assert done.sent >= 2 and done.refused == 0  # the report and the dcoflow identity (+ markings)
    assert _held(client, SCRATCH, [stix_id("report", dco)])


def test_single_red_object_is_refused_and_left_out_of_the_report(hunted_dco: str, catalog: Catalog,
                                                                 client: TaxiiClient) -> None:
    ctx = DcoContext(hunted_dco, (TLP2_IDS[Tlp.RED],))
    with session_scope() as s:
        sighting = next(o["id"] for o in latest_objects(s, hunted_dco, ["sighting"]))
        note = {**ctx.sdo("note", stix_id("note", sighting, 1), datetime.now(UTC)),
                "content": "the host owner's name, for the named recipients only", "object_refs": [sighting]}
        put_objects(s, [note], hunted_dco)
    with session_scope() as s:
        result = publish_dco(s, hunted_dco, catalog, client, SCRATCH, policy=CLEARED)
    assert result.refused == 1 and result.refused_ids == [note["id"]] and result.failed == 0
    assert not _held(client, SCRATCH, [note["id"]])
    report = next(client.get_objects(SCRATCH, ids=[stix_id("report", hunted_dco)]))
    assert note["id"] not in report["object_refs"] and sighting in report["object_refs"]


def test_read_only_collection_is_a_clear_error(hunted_dco: str, catalog: Catalog, client: TaxiiClient,
                                               taxii_server: str) -> None:
    with session_scope() as s, pytest.raises(AuthError) as err:
        publish_dco(s, hunted_dco, catalog, client, READ_ONLY, policy=CLEARED)
    message = err.value.message
    assert READ_ONLY in message and taxii_server in message and "not writable" in message
    assert "Partner feed" in message and err.value.status == 403


def test_write_only_collection_is_not_deduplicated(hunted_dco: str, catalog: Catalog, client: TaxiiClient) -> None:
    with session_scope() as s:
        first = publish_dco(s, hunted_dco, catalog, client, WRITE_ONLY, policy=CLEARED)
        second = publish_dco(s, hunted_dco, catalog, client, WRITE_ONLY, policy=CLEARED)
    assert not first.deduplicated and first.sent > 0 and first.failed == 0
    # the server refuses what it already holds; each refusal is reported with its object and reason
    assert second.sent == 0 and second.failed == first.sent
    assert all(f["id"] and f["message"] for f in second.failures)
    assert "failed" in second.summary()


def test_cli_publish_json(hunted_dco: str, catalog: Catalog, taxii_server: str,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    import dcoflow.connectors.attack as attack_connector
    from dcoflow.flows.cli.publish import app as publish_app

    app = typer.Typer()  # as the root `dco` app mounts it: `dco publish …`
    app.add_typer(publish_app)
    app.callback()(lambda: None)

    monkeypatch.setattr(attack_connector, "load_catalog", lambda source=None, **_: catalog)
    monkeypatch.setenv("TAXII_PW", PASSWORD)
    args = ["publish", hunted_dco, "--taxii", taxii_server, "--collection", SCRATCH, "--user", USER,
            "--password-env", "TAXII_PW", "--releasable", DEMO_STATEMENT, "--json"]
    runner = CliRunner()
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["sent"] > 0 and doc["failed"] == 0 and doc["collection_id"] == SCRATCH
    again = json.loads(runner.invoke(app, args).stdout)
    assert again["sent"] == 0 and again["skipped"] == doc["sent"] + doc["skipped"]
    bad = runner.invoke(app, [*args[:5], READ_ONLY, *args[6:]])
    assert bad.exit_code == 2 and "not writable" in bad.output


def test_cli_publish_reads_the_settings(hunted_dco: str, catalog: Catalog, taxii_server: str, settings: Any,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without options, `dco publish` takes server, collection and credentials from DCO_TAXII_* settings."""
    import dcoflow.connectors.attack as attack_connector
    from dcoflow.flows.cli import app

    monkeypatch.setattr(attack_connector, "load_catalog", lambda source=None, **_: catalog)
    runner = CliRunner()
    args = ["publish", hunted_dco, "--releasable", DEMO_STATEMENT, "--json"]
    missing = runner.invoke(app, args)
    assert missing.exit_code == 2 and "DCO_TAXII_URL" in missing.output
    for name, value in {"DCO_TAXII_URL": taxii_server, "DCO_TAXII_COLLECTION": SCRATCH, "DCO_TAXII_USER": USER,
                        "DCO_TAXII_PASSWORD": PASSWORD}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["collection_id"] == SCRATCH
    monkeypatch.setenv("DCO_TAXII_PASSWORD", "wrong")
    get_settings.cache_clear()
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "401" in refused.output  # the password came from the setting


def test_flow_publishes_with_env_credentials(hunted_dco: str, catalog: Catalog, taxii_server: str,
                                             demo_spec: DcoSpec, prefect_harness: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import dcoflow.connectors.attack as attack_connector
    import dcoflow.flows.publish as publish_flow

    monkeypatch.setattr(attack_connector, "load_catalog", lambda source=None, **_: catalog)
    monkeypatch.setenv("DCO_TAXII_USER", USER)
    monkeypatch.setenv("DCO_TAXII_PASSWORD", PASSWORD)
    monkeypatch.setenv("DCO_TAXII_URL", taxii_server)
    get_settings.cache_clear()  # the flow reads the TAXII settings
    result = publish_flow.publish_dco_taxii(hunted_dco, "", FLOW, releasable=[DEMO_STATEMENT])
    assert result["sent"] > 0 and result["failed"] == 0 and result["deduplicated"] is True
    red = demo_spec.model_copy(update={"name": "Red flow", "marking": Marking(tlp=Tlp.RED)})
    with session_scope() as s:
        red_id = create_operation(s, red, "coordinator").id
    with pytest.raises(ValidationError):
        publish_flow.publish_dco_taxii(red_id, taxii_server, FLOW, releasable=[DEMO_STATEMENT])
