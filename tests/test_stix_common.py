"""The shared STIX head: author, markings and DCO id are the same for every builder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import stix2

from dcoflow.models.operation import Marking
from dcoflow.models.stix.common import (
    DCOFLOW_IDENTITY_ID,
    DcoContext,
    dcoflow_identity,
    marking_refs,
    system_identity,
)
from dcoflow.models.stix.markings import TLP2_IDS, Tlp


def test_marking_refs_add_the_statement_definition() -> None:
    refs, definitions = marking_refs(Marking(tlp=Tlp.RED, classification="NATO RESTRICTED"))
    assert refs[0] == TLP2_IDS[Tlp.RED] and len(refs) == 2
    assert [d["id"] for d in definitions] == refs[1:]
    assert definitions[0]["definition"] == {"statement": "NATO RESTRICTED"}
    assert marking_refs(Marking(tlp=Tlp.GREEN)) == ([TLP2_IDS[Tlp.GREEN]], [])


def test_context_heads_carry_author_markings_and_dco() -> None:
    ctx = DcoContext("dco-1", (TLP2_IDS[Tlp.AMBER],))
    t = datetime(2024, 5, 1, tzinfo=UTC)
    head = ctx.sdo("note", "note--4b5a4d3c-94bf-4b4c-b8b7-1b1e7d7bb000", t, t - timedelta(days=1))
    assert head["modified"] == head["created"] == "2024-05-01T00:00:00.000Z"  # never before created
    assert head["created_by_ref"] == DCOFLOW_IDENTITY_ID and head["x_dco_id"] == "dco-1"
    assert head["object_marking_refs"] == [TLP2_IDS[Tlp.AMBER]]


def test_identities_validate() -> None:
    tool = system_identity("EDR", x_dco_id="dco-1")
    assert tool["id"] == system_identity("EDR")["id"] != dcoflow_identity()["id"]
    for obj in (dcoflow_identity(), tool):
        stix2.parse(obj, allow_custom=True, version="2.1")
