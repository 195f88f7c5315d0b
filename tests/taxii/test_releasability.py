"""Releasability enforced by every marking, against a real medallion TAXII server: a collection's allowed
marking set (highest TLP, classification/releasability statements) keeps home each object above it — a higher
TLP 2.0 or 1.0 marking, a granular marking, a statement the collection is not cleared for, a marking-definition
we cannot read — and a DCO whose own marking is above it is refused before anything is sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from dcoflow.connectors.taxii import TaxiiClient
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.core.settings import Settings
from dcoflow.models.attack import Catalog
from dcoflow.models.hunting import HuntOutcome
from dcoflow.models.operation import DcoSpec, Marking
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.repository.stix_store import latest_objects, put_objects
from dcoflow.models.stix.common import DcoContext
from dcoflow.models.stix.ids import stix_id
from dcoflow.models.stix.markings import TLP1_IDS, TLP2_IDS, ReleasePolicy, Tlp, statement_marking
from dcoflow.tasks.reporting.taxii_publish import publish_dco

from .conftest import FLOW, PASSWORD, SCRATCH, USER, record_demo_hunt

DEMO_STATEMENT = "NATO UNCLASSIFIED — REL TO DCO CELL"
SECRET = "NATO SECRET — REL TO NATO"
TLP1_AMBER = next(i for i, level in TLP1_IDS.items() if level == Tlp.AMBER)


@pytest.fixture()
def client(taxii_server: str) -> Any:
    with TaxiiClient(taxii_server, username=USER, password=PASSWORD) as c:
        yield c


def _held(client: TaxiiClient, collection: str, ids: list[str]) -> set[str]:
    return {m["id"] for m in client.manifest(collection, ids=ids)}


@pytest.fixture()
def green_dco(settings: Settings, lsass_hunt: HuntOutcome, catalog: Catalog, demo_spec: DcoSpec) -> str:
    spec = demo_spec.model_copy(update={"name": "Green sharing", "marking": Marking(
        tlp=Tlp.GREEN, classification="NATO UNCLASSIFIED", releasability="REL TO DCO CELL")})
    return record_demo_hunt(spec, lsass_hunt, catalog)


def _notes(dco: str) -> dict[str, dict[str, Any]]:
    """One note per kind of marking, each on the DCO's first sighting; 'ok' carries only the DCO's own."""
    with session_scope() as s:
        own = DcoContext.for_operation(get_operation(s, dco)).marking_refs
        sighting = next(o["id"] for o in latest_objects(s, dco, ["sighting"]))
    secret = statement_marking(SECRET)
    unknown = f"marking-definition--{uuid.uuid4()}"
    kinds: dict[str, tuple[str, ...]] = {
        "ok": own,
        "tlp2-amber": (TLP2_IDS[Tlp.AMBER], own[1]),
        "tlp1-amber": (TLP1_AMBER, own[1]),
        "secret": (own[0], secret["id"]),
        "unknown": (*own, unknown),
        "granular-red": own,
    }
    notes = {}
    for kind, refs in kinds.items():
        note = {**DcoContext(dco, refs).sdo("note", stix_id("note", dco, kind), datetime.now(UTC)),
                "content": f"remark marked {kind}", "object_refs": [sighting]}
        if kind == "granular-red":
            note["granular_markings"] = [{"marking_ref": TLP2_IDS[Tlp.RED], "selectors": ["content"]}]
        notes[kind] = note
    with session_scope() as s:
        put_objects(s, [secret, *notes.values()], dco)
    return notes


def test_each_marking_kind_above_the_collection_is_never_sent(green_dco: str, catalog: Catalog,
                                                              client: TaxiiClient) -> None:
    notes = _notes(green_dco)
    green_cell = ReleasePolicy(max_tlp=Tlp.GREEN, statements=frozenset({DEMO_STATEMENT}))
    with session_scope() as s:
        result = publish_dco(s, green_dco, catalog, client, SCRATCH, policy=green_cell)
    refused = {notes[k]["id"]: k for k in notes if k != "ok"}
    assert set(result.refused_ids) == set(refused) and result.failed == 0 and result.sent > 10
    reasons = {r["id"]: r["reason"] for r in result.refusals}
    assert "TLP:AMBER is above the recipient's TLP:GREEN" in reasons[notes["tlp2-amber"]["id"]]
    assert "TLP:AMBER" in reasons[notes["tlp1-amber"]["id"]]
    assert SECRET in reasons[notes["secret"]["id"]] and "not releasable" in reasons[notes["secret"]["id"]]
    assert "not a TLP or statement marking" in reasons[notes["unknown"]["id"]]
    assert "TLP:RED" in reasons[notes["granular-red"]["id"]]
    ids = [n["id"] for n in notes.values()]
    assert _held(client, SCRATCH, ids) == {notes["ok"]["id"]}
    # the SECRET statement's text does not travel either: nothing sent carries it
    assert not _held(client, SCRATCH, [statement_marking(SECRET)["id"]])
    assert _held(client, SCRATCH, [statement_marking(DEMO_STATEMENT)["id"]])

    # a collection cleared for more receives more; TLP:RED and unreadable markings still never go
    wider = ReleasePolicy(max_tlp=Tlp.AMBER, statements=frozenset({DEMO_STATEMENT, SECRET}))
    with session_scope() as s:
        more = publish_dco(s, green_dco, catalog, client, FLOW, policy=wider)
    assert set(more.refused_ids) == {notes["unknown"]["id"], notes["granular-red"]["id"]}
    assert _held(client, FLOW, ids) == {notes[k]["id"] for k in ("ok", "tlp2-amber", "tlp1-amber", "secret")}
    assert _held(client, FLOW, [statement_marking(SECRET)["id"]])


def test_a_dco_above_the_collection_is_refused_before_anything_is_sent(hunted_dco: str, catalog: Catalog,
                                                                       client: TaxiiClient) -> None:
    report = stix_id("report", hunted_dco)
    with session_scope() as s, pytest.raises(ValidationError) as err:  # the demo DCO is TLP:AMBER
        publish_dco(s, hunted_dco, catalog, client, SCRATCH,
                    policy=ReleasePolicy(max_tlp=Tlp.GREEN, statements=frozenset({DEMO_STATEMENT})))
    assert err.value.field == "marking.tlp" and "above the TLP:GREEN" in err.value.message
    with session_scope() as s, pytest.raises(ValidationError) as err:  # cleared for another statement only
        publish_dco(s, hunted_dco, catalog, client, SCRATCH, policy=ReleasePolicy(statements=frozenset({SECRET})))
    assert err.value.field == "marking.statement" and DEMO_STATEMENT in err.value.message
    assert "--releasable" in (err.value.hint or "")
    with session_scope() as s, pytest.raises(ValidationError) as err:  # no statement cleared at all: the default
        publish_dco(s, hunted_dco, catalog, client, SCRATCH)
    assert err.value.field == "marking.statement"
    assert not _held(client, SCRATCH, [report])
