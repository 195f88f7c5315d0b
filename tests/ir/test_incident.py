"""An incident-response-support DCO from an incident: a STIX bundle (incident core extension, indicators,
observed activity, attack-patterns) or a TheHive 5 case (observables, procedures) through the TheHive connector
(MockTransport with TheHive's documented shapes). The DCO links to the incident, its scope is the affected hosts
and the window around the first activity; the same incident again changes nothing; bad input is named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pydantic import ValidationError as PydanticValidationError
from typer.testing import CliRunner

from dcoflow.connectors.thehive import TheHiveClient
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ConfigError, ContentError
from dcoflow.core.settings import Settings
from dcoflow.models.ir.incident import LOOKAHEAD, LOOKBACK
from dcoflow.models.operation import DcoSpec, DcoType
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.repository.stix_store import count_objects, latest_objects
from dcoflow.tasks.plan.ir_incident import create_ir_dco, load_incident

from .incident_bundle import FIRST_ACTIVITY, INCIDENT, incident_bundle


@pytest.fixture()
def bundle_file(tmp_path: Path) -> Path:
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(incident_bundle()), encoding="utf-8")
    return path


def test_dco_from_a_stix_incident(settings: Settings, bundle_file: Path) -> None:
    with session_scope() as s:
        done = create_ir_dco(s, load_incident(str(bundle_file)), actor="im")
    with session_scope() as s:
        spec = get_operation(s, done.dco_id).dco
        kept = {o["id"]: o for o in latest_objects(s, done.dco_id)}
        counts = count_objects(s, done.dco_id)
    assert spec.type == DcoType.INCIDENT_RESPONSE_SUPPORT and spec.incident is not None
    assert spec.incident.ref == INCIDENT and spec.incident.source == "stix"
    assert spec.scope.hosts == ["wkst-01"] == spec.incident.hosts
    first = datetime.fromisoformat(FIRST_ACTIVITY.replace("Z", "+00:00"))
    examined = spec.incident.activity_window
    assert examined is not None and examined.start == first - LOOKBACK
    assert examined.end == datetime(2026, 11, 19, 2, tzinfo=UTC) + LOOKAHEAD
    # the DCO's own window (the conduct gate's) opens when IR support starts
    assert spec.window is not None and spec.window.start <= datetime.now(UTC) < spec.window.end
    assert spec.threat_profile.techniques == ["T1003.001", "T1059.001"]
    assert len(spec.incident.indicators) == 2 and set(spec.incident.indicators) <= set(kept)
    assert INCIDENT in kept and done.indicators == 2
    with session_scope() as s:
        version = get_operation(s, done.dco_id).version
    with session_scope() as s:  # the same incident again (later): the same DCO, unchanged, nothing new stored
        again = create_ir_dco(s, load_incident(str(bundle_file)), actor="im")
    with session_scope() as s:
        assert again.dco_id == done.dco_id and count_objects(s, done.dco_id) == counts
        assert get_operation(s, done.dco_id).version == version


def test_bad_incident_input_is_named(settings: Settings, tmp_path: Path) -> None:
    two = tmp_path / "two.json"
    two.write_text(json.dumps(incident_bundle(extra_incident=True)), encoding="utf-8")
    with pytest.raises(ContentError) as err:
        load_incident(str(two))
    assert "2 incidents" in err.value.message and INCIDENT in (err.value.hint or "")
    assert load_incident(str(two), incident_id=INCIDENT).link.ref == INCIDENT
    none = tmp_path / "none.json"
    none.write_text(json.dumps({"type": "bundle", "id": "bundle--1", "objects": []}), encoding="utf-8")
    with pytest.raises(ContentError, match="holds no incident"):
        load_incident(str(none))
    with pytest.raises(ContentError, match="not a STIX bundle"):
        (tmp_path / "x.json").write_text("[]", encoding="utf-8")
        load_incident(str(tmp_path / "x.json"))
    # the operation spec accepts incident: only on an incident-response-support DCO
    base = {"name": "Hunt", "objective": "find it", "threat_profile": {"techniques": ["T1003"]},
            "incident": {"source": "stix", "ref": INCIDENT}}
    assert DcoSpec.model_validate({**base, "type": "incident-response-support"}).incident is not None
    with pytest.raises(PydanticValidationError, match="incident-response-support"):
        DcoSpec.model_validate({**base, "type": "threat-hunt"})


CASE_ID = "~40964200"
START_MS = int(datetime(2026, 11, 18, 20, 0, tzinfo=UTC).timestamp() * 1000)


def thehive_transport(procedures: list[dict[str, Any]] | None = None) -> httpx.MockTransport:
    """TheHive 5 as documented: GET /api/v1/case/{id}; POST /api/v1/query with getCase + observables/procedures;
    POST /api/v1/case/{id}/procedure."""
    procs = procedures if procedures is not None else [
        {"_id": "~1", "patternId": "T1003.001", "tactic": "credential-access", "occurDate": START_MS + 3_600_000},
        {"_id": "~2", "patternId": "T1059.001", "tactic": "execution", "occurDate": START_MS + 60_000}]
    observables = [
        {"_id": "~o1", "_type": "Observable", "dataType": "hostname", "data": "WKST-01", "ioc": False},
        {"_id": "~o2", "_type": "Observable", "dataType": "hash", "data": "0123456789ABCDEF0123456789ABCDEF",
         "ioc": True, "_createdAt": START_MS},
        {"_id": "~o3", "_type": "Observable", "dataType": "domain", "data": "update-check.example.net", "ioc": True},
        {"_id": "~o4", "_type": "Observable", "dataType": "other", "data": "free text"},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer key"
        if request.method == "GET" and request.url.path == f"/api/v1/case/{CASE_ID}":
            return httpx.Response(200, json={"_id": CASE_ID, "_type": "Case", "number": 42, "title": "Cred theft",
                                             "startDate": START_MS, "tlp": 2, "pap": 2, "severity": 3,
                                             "status": "InProgress", "tags": []})
        if request.method == "POST" and request.url.path == "/api/v1/query":
            query = json.loads(request.content)["query"]
            assert query[0] == {"_name": "getCase", "idOrName": CASE_ID}
            return httpx.Response(200, json=observables if query[1]["_name"] == "observables" else procs)
        if request.method == "POST" and request.url.path == f"/api/v1/case/{CASE_ID}/procedure":
            body = json.loads(request.content)
            created = {"_id": f"~p{len(procs) + 1}", **body}
            procs.append(created)
            return httpx.Response(201, json=created)
        return httpx.Response(404, json={"type": "NotFoundError", "message": f"{request.url.path} not found"})

    return httpx.MockTransport(handler)


def test_dco_from_a_thehive_case(settings: Settings) -> None:
    with TheHiveClient("http://thehive.local", "key", transport=thehive_transport()) as hive:
        imported = load_incident(f"thehive:{CASE_ID}", thehive=hive)
    with session_scope() as s:
        done = create_ir_dco(s, imported)
    with session_scope() as s:
        spec = get_operation(s, done.dco_id).dco
        indicators = latest_objects(s, done.dco_id, ["indicator"])
    assert spec.incident is not None and spec.incident.source == "thehive" and spec.incident.ref == CASE_ID
    assert spec.scope.hosts == ["wkst-01"] and spec.threat_profile.techniques == ["T1003.001", "T1059.001"]
    assert spec.incident.activity_window is not None
    assert spec.incident.activity_window.start == datetime(2026, 11, 18, 20, tzinfo=UTC) - LOOKBACK
    assert sorted(i["pattern"] for i in indicators) == [
        "[domain-name:value = 'update-check.example.net']",
        "[file:hashes.'MD5' = '0123456789abcdef0123456789abcdef']"]
    assert any("~o4" in w for w in done.warnings)  # no STIX equivalent: reported, not dropped silently
    assert done.indicators == 2


def test_ir_create_reads_the_case_through_the_connector_registry(settings: Settings) -> None:
    """`dco ir create thehive:…` gets its TheHive client from the registry (settings and transport in one place)."""
    from dcoflow.connectors.registry import ConnectorRegistry
    from dcoflow.tasks.plan.ir_incident import create_ir_support_dco

    configured = settings.model_copy(update={"thehive_url": "http://thehive.local",
                                             "thehive_api_key": SecretStr("key")})
    registry = ConnectorRegistry.from_settings(configured, transport=thehive_transport())
    done = create_ir_support_dco(f"thehive:{CASE_ID}", registry=registry)
    assert done.incident["ref"] == CASE_ID and done.indicators == 2
    assert create_ir_support_dco(f"thehive:{CASE_ID}", registry=registry).dco_id == done.dco_id  # idempotent
    with pytest.raises(ConfigError, match="TheHive"):  # not configured: a clear error, no client built elsewhere
        create_ir_support_dco(f"thehive:{CASE_ID}", registry=ConnectorRegistry.from_settings(settings))


def test_thehive_procedures_are_added_once() -> None:
    with TheHiveClient("http://thehive.local", "key", transport=thehive_transport(procedures=[])) as hive:
        first = hive.add_procedure(CASE_ID, "T1003.001", tactic="credential-access", occur_date_ms=START_MS)
        again = hive.add_procedure(CASE_ID, "T1003.001", tactic="credential-access", occur_date_ms=START_MS)
        assert first["_id"] == again["_id"] and len(hive.case_procedures(CASE_ID)) == 1


def test_cli_ir_create(settings: Settings, bundle_file: Path) -> None:
    from dcoflow.flows.cli import app

    out = CliRunner().invoke(app, ["ir", "create", str(bundle_file), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["incident"]["ref"] == INCIDENT and doc["techniques"] == ["T1003.001", "T1059.001"]
    bad = CliRunner().invoke(app, ["ir", "create", str(bundle_file.parent / "missing.json")])
    assert bad.exit_code == 2 and "missing.json" in bad.output
