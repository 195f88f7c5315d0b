"""`dco ops create FILE --from-stix BUNDLE`: a CTI report's intrusion sets, campaigns, malware/tools and
attack-patterns seed the threat profile, mapped to the loaded ATT&CK (v18.1) by STIX id or external id; what
ATT&CK does not know is reported with why; objects outside the report are not taken."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.attack import Catalog
from dcoflow.models.ir.cti import profile_from_cti
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.stix.ids import stix_id

T = "2026-11-01T00:00:00.000Z"


def _sdo(kind: str, key: str, name: str, ext: str | None = None, oid: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": kind, "spec_version": "2.1", "id": oid or stix_id(kind, key), "created": T,
                           "modified": T, "name": name}
    if ext:
        obj["external_references"] = [{"source_name": "mitre-attack", "external_id": ext}]
    if kind == "malware":
        obj["is_family"] = True
    return obj


def cti_bundle(catalog: Catalog) -> dict[str, Any]:
    lsass = catalog.technique("T1003.001")
    inside = [
        _sdo("intrusion-set", "apt29", "APT29", "G0016"),
        _sdo("campaign", "solarwinds", "SolarWinds Compromise", "C0024"),
        _sdo("malware", "cs", "Cobalt Strike", "S0154"),
        _sdo("tool", "mimi", "Mimikatz", "S0002"),
        _sdo("attack-pattern", "lsass", "whatever the vendor calls it", oid=lsass.stix_id),  # ATT&CK's own id
        _sdo("attack-pattern", "ps", "PowerShell", "T1059.001"),
        _sdo("attack-pattern", "future", "A technique from a later release", "T9999"),
        _sdo("intrusion-set", "vendor", "VENDOR-BEAR"),  # a vendor name, no ATT&CK id
    ]
    outside = _sdo("intrusion-set", "other", "Another group", "G0007")
    report = {"type": "report", "spec_version": "2.1", "id": stix_id("report", "cti"), "created": T, "modified": T,
              "published": T, "name": "APT29 activity 2026", "object_refs": [o["id"] for o in inside]}
    return {"type": "bundle", "id": stix_id("bundle", "cti"), "objects": [report, *inside, outside]}


def test_profile_from_a_cti_report(catalog: Catalog) -> None:
    profile = profile_from_cti(cti_bundle(catalog)["objects"], catalog)
    assert profile.groups == ["G0016"] and profile.campaigns == ["C0024"]
    assert profile.software == ["S0002", "S0154"] and profile.techniques == ["T1003.001", "T1059.001"]
    unknown = {u["name"]: u["reason"] for u in profile.unknown}
    assert set(unknown) == {"A technique from a later release", "VENDOR-BEAR"}
    assert "T9999 is not in ATT&CK" in str(unknown["A technique from a later release"])
    assert unknown["VENDOR-BEAR"] == "no ATT&CK external id" and profile.reports == ["APT29 activity 2026"]


def test_cli_ops_create_from_stix(settings: Settings, catalog: Catalog, tmp_path: Path, monkeypatch: Any) -> None:
    import dcoflow.connectors.attack as attack_connector
    from dcoflow.flows.cli import app

    monkeypatch.setattr(attack_connector, "load_catalog", lambda source=None, **_: catalog)
    bundle = tmp_path / "cti.json"
    bundle.write_text(json.dumps(cti_bundle(catalog)), encoding="utf-8")
    op_file = tmp_path / "op.yaml"
    op_file.write_text("name: APT29 hunt from CTI\nobjective: hunt what the report describes\ntype: threat-hunt\n"
                       "threat_profile: {techniques: [T1021.001]}\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["ops", "create", str(op_file), "--from-stix", str(bundle), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert len(doc["cti"]["unknown"]) == 2
    with session_scope() as s:
        profile = get_operation(s, doc["dco"]).dco.threat_profile
    assert profile.groups == ["G0016"] and profile.campaigns == ["C0024"]
    assert profile.techniques == ["T1021.001", "T1003.001", "T1059.001"]  # the file's own first, kept
    bad = CliRunner().invoke(app, ["ops", "create", str(op_file), "--from-stix", str(tmp_path / "nope.json")])
    assert bad.exit_code == 2 and "nope.json" in bad.output
