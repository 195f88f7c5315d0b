"""Caldera adversary profiles and abilities into a DCO's plan, through the REST API v2 served by
httpx.MockTransport with the responses captured from a Caldera 5.3 server (../shared/caldera:
sample_GET_api_v2_adversaries.json, sample_GET_api_v2_abilities.json; unknown ids answer 404
``{"error": "Adversary not found: <id>"}`` as mitre/caldera app/api/v2/handlers/base_object_api.py does)."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select
from typer.testing import CliRunner

import dcoflow.flows.cli.emulate as emulate_cli
from dcoflow.connectors.caldera import CalderaClient
from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.db import session_scope
from dcoflow.core.errors import AuthError, NotFoundError
from dcoflow.core.settings import Settings, get_settings
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.audit import AuditEvent
from dcoflow.models.plan import EmulationStep, ProcedureSource, StepStatus
from dcoflow.models.repository.emulation import load_steps
from dcoflow.models.repository.operation import create_operation
from dcoflow.tasks.conduct.emulation.plan_import import import_caldera_abilities, import_caldera_adversary

from .helpers import spec

URL = "http://caldera.lab:8888"
KEY = "red-key"
# "Check" (stock adversary): 8 abilities, one of which (335cea7b…) the captured server does not have.
CHECK = "01d77744-2515-401a-a497-d9f7241aac3c"
MISSING_ABILITY = "335cea7b-bec0-48c6-adfb-6066070f5f68"
CHECK_LINUX = [  # ability id, technique, linux sh command — in the profile's atomic_ordering
    ("bd527b63-9f9e-46e0-9816-b8434d2b8989", "T1033", "whoami"),
    ("6e1a53c0-7352-4899-be35-fa7f364d5722", "T1083", "pwd"),
    ("52177cc1-b9ab-4411-ac21-2eadc4b5d3b8", "T1083", "ls"),
    ("e8017c46-acb8-400c-a4b5-b3362b5b5baa", "T1016", "sudo ifconfig"),
    ("9849d956-37ea-49f2-a8b5-f2ca080b315d", "T1518", "which go"),
    ("830bb6ed-9594-4817-b1a1-c298c0f9f425", "T1518", "which google-chrome"),
    ("b18e8767-b7ea-41a3-8e80-baf65a5ddef5", "T1518", "python3 --version;python2 --version;python --version"),
]
DISCOVERY = "0f4c3c67-845e-49a0-927e-90ed33c044e0"  # 12 abilities, several Windows- or macOS-only

runner = CliRunner()


class CalderaServer:
    """Answers GET /api/v2/abilities, /adversaries and /adversaries/{id} like the captured server."""

    def __init__(self, shared: Path) -> None:
        folder = shared / "caldera"
        self.abilities: list[dict[str, Any]] = json.loads((folder / "sample_GET_api_v2_abilities.json").read_text())
        self.adversaries: list[dict[str, Any]] = json.loads(
            (folder / "sample_GET_api_v2_adversaries.json").read_text())
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("KEY") != KEY:
            return httpx.Response(401, text="401: Unauthorized")
        path = request.url.path
        if request.method == "GET" and path == "/api/v2/abilities":
            return httpx.Response(200, json=self.abilities)
        if request.method == "GET" and path == "/api/v2/adversaries":
            return httpx.Response(200, json=self.adversaries)
        if request.method == "GET" and path.startswith("/api/v2/adversaries/"):
            wanted = path.rsplit("/", 1)[1]
            found = next((a for a in self.adversaries if a["adversary_id"] == wanted), None)
            if found is None:
                return httpx.Response(404, json={"error": f"Adversary not found: {wanted}", "details": {}})
            return httpx.Response(200, json=found)
        return httpx.Response(404, json={"error": "not found"})

    def client(self, key: str = KEY) -> CalderaClient:
        return CalderaClient(URL, key, transport=httpx.MockTransport(self), retries=0, sleep=lambda _s: None)

    def ability(self, ability_id: str) -> dict[str, Any]:
        return next(a for a in self.abilities if a["ability_id"] == ability_id)


@pytest.fixture()
def server(shared_dir: Path) -> CalderaServer:
    return CalderaServer(shared_dir)


@pytest.fixture()
def lab_dco(settings: Settings) -> str:
    """The Linux lab DCO with an empty plan."""
    with session_scope() as session:
        return create_operation(session, spec(), "tester").id


def _caldera_steps(dco: str) -> list[EmulationStep]:
    with session_scope() as session:
        return [s for s in load_steps(session, dco) if s.source == ProcedureSource.CALDERA]


def test_adversary_becomes_ordered_chain_of_steps(server: CalderaServer, lab_dco: str) -> None:
    with session_scope() as session:
        summary = import_caldera_adversary(session, lab_dco, server.client(), CHECK)
    assert (summary.created, summary.updated, summary.unchanged) == (7, 0, 0)
    assert any(MISSING_ABILITY in w and "not on the Caldera server" in w for w in summary.warnings)
    steps = _caldera_steps(lab_dco)
    assert [(s.procedure_ref, s.technique_id, s.command) for s in steps] == CHECK_LINUX
    assert [s.order for s in steps] == list(range(1, 8))
    assert steps[0].depends_on == [] and all(s.depends_on == [p.id] for p, s in pairwise(steps))
    assert {(s.connector, s.executor, s.platform, s.status) for s in steps} == {
        ("caldera", "sh", "linux", StepStatus.PENDING)}
    first = steps[0]
    assert (first.procedure_name, first.tactic, first.technique_name) == (
        "Current User", "discovery", "System Owner/User Discovery")
    with session_scope() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.dco_id == lab_dco,
                                                       AuditEvent.action == "emulation-caldera-adversary-imported"))
        assert [e.details["adversary"] for e in events] == [CHECK]


def test_reimport_creates_nothing_and_refreshes_only_pending_steps(server: CalderaServer, lab_dco: str) -> None:
    with session_scope() as session:
        import_caldera_adversary(session, lab_dco, server.client(), CHECK)
    before = {s.id: s for s in _caldera_steps(lab_dco)}
    with session_scope() as session:
        again = import_caldera_adversary(session, lab_dco, server.client(), CHECK)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 7)
    assert {s.id: (s.order, s.version) for s in _caldera_steps(lab_dco)} == {
        i: (s.order, s.version) for i, s in before.items()}

    # The server's abilities changed: the pending step follows, the one that already ran does not.
    whoami_step, pwd_step = list(before.values())[:2]
    with session_scope() as session:
        ran = session.get(EmulationStep, pwd_step.id)
        assert ran is not None
        ran.status = StepStatus.DONE
        session.add(ran)
    for aid, cmd in ((CHECK_LINUX[0][0], "id -un"), (CHECK_LINUX[1][0], "echo $PWD")):
        for ex in server.ability(aid)["executors"]:
            ex["command"] = cmd
    with session_scope() as session:
        third = import_caldera_adversary(session, lab_dco, server.client(), CHECK)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 6)
    after = {s.id: s for s in _caldera_steps(lab_dco)}
    assert (after[whoami_step.id].command, after[whoami_step.id].version) == ("id -un", 2)
    assert (after[pwd_step.id].command, after[pwd_step.id].version) == ("pwd", 1)


def test_steps_follow_the_existing_plan(server: CalderaServer, emulation_dco: str) -> None:
    with session_scope() as session:
        import_caldera_adversary(session, emulation_dco, server.client(), CHECK)
        steps = load_steps(session, emulation_dco)
    assert [s.order for s in steps] == list(range(1, 12))
    assert [s.source for s in steps[4:]] == [ProcedureSource.CALDERA] * 7


def test_platform_choice_and_abilities_without_executor(server: CalderaServer, lab_dco: str) -> None:
    with session_scope() as session:
        linux = import_caldera_adversary(session, lab_dco, server.client(), DISCOVERY)
    assert linux.created == 12
    steps = _caldera_steps(lab_dco)
    manual = [s for s in steps if s.connector == "manual"]
    # Windows-only (View admin shares, Discover domain controller, Identify Firewalls) and macOS-only
    # (Identify local users, Snag broadcast IP, Discover antivirus programs, Get Chrome Bookmarks).
    assert len(manual) == 7 and all(s.command is None and s.executor == "manual" for s in manual)
    assert sum("kept as a manual step" in w for w in linux.warnings) == 7
    # The chain still runs through every ability, runnable or not.
    assert all(s.depends_on == [p.id] for p, s in pairwise(steps))

    with session_scope() as session:
        windows = import_caldera_adversary(session, lab_dco, server.client(), CHECK, platform="windows")
    assert windows.created == 7
    check = _caldera_steps(lab_dco)[12:]
    assert [s.command for s in check[:2]] == ["whoami", "pwd"]
    assert check[0].executor == "psh" and check[0].platform == "windows"
    python = check[-1]  # Check Python has a Windows cmd executor only
    assert (python.executor, python.command) == ("cmd", "python3 --version&python2 --version&python --version")
    assert [s.connector for s in check[4:6]] == ["manual", "manual"]  # Check Go/Chrome: no Windows executor


def test_unknown_technique_is_kept_and_reported(server: CalderaServer, lab_dco: str, catalog: Catalog) -> None:
    server.ability(CHECK_LINUX[4][0])["technique_id"] = "T1999"
    server.ability(CHECK_LINUX[0][0])["technique_id"] = " t1033"  # as Caldera's stray-space ids
    with session_scope() as session:
        summary = import_caldera_adversary(session, lab_dco, server.client(), CHECK, catalog=catalog)
    assert summary.created == 7
    assert [w for w in summary.warnings if "T1999" in w] == [
        f"ability 6 'Check Go' ({CHECK_LINUX[4][0]}): technique T1999 is not in ATT&CK {catalog.version} (kept)"]
    assert [s.technique_id for s in _caldera_steps(lab_dco)][:5] == ["T1033", "T1083", "T1083", "T1016", "T1999"]


def test_rejected_key_is_an_auth_error_naming_caldera(server: CalderaServer, lab_dco: str) -> None:
    with pytest.raises(AuthError) as err, session_scope() as session:
        import_caldera_adversary(session, lab_dco, server.client(key="wrong"), CHECK)
    assert err.value.status == 401 and err.value.system == "caldera" and "caldera" in err.value.message
    assert len(server.requests) == 1 and _caldera_steps(lab_dco) == []


def test_unknown_adversary_is_not_found(server: CalderaServer, lab_dco: str) -> None:
    bogus = "00000000-0000-4000-8000-00000000dead"
    with pytest.raises(NotFoundError) as err, session_scope() as session:
        import_caldera_adversary(session, lab_dco, server.client(), bogus)
    assert err.value.system == "caldera" and bogus in err.value.message
    assert _caldera_steps(lab_dco) == []


def _manual_step(dco: str, order: int, technique: str, status: StepStatus = StepStatus.PENDING) -> EmulationStep:
    return EmulationStep(id=f"{dco}-m{order}", dco_id=dco, order=order, tactic="discovery", technique_id=technique,
                         technique_name=technique, source=ProcedureSource.MANUAL, procedure_ref=None,
                         procedure_name="by hand", platform="linux", executor="manual", connector="manual",
                         status=status)


def test_abilities_fill_steps_without_procedure(server: CalderaServer, emulation_dco: str) -> None:
    with session_scope() as session:
        for step in (_manual_step(emulation_dco, 5, "T1033"), _manual_step(emulation_dco, 6, "T1518", StepStatus.DONE),
                     _manual_step(emulation_dco, 7, "T1003.001"), _manual_step(emulation_dco, 8, "T1083")):
            session.add(step)
    with session_scope() as session:
        only = import_caldera_abilities(session, emulation_dco, server.client(), ["t1033"])
    assert (only.created, only.updated, only.unchanged) == (0, 1, 0)
    with session_scope() as session:
        rest = import_caldera_abilities(session, emulation_dco, server.client())
        steps = {s.order: s for s in load_steps(session, emulation_dco)}
    # s4 (T1059.004 operator shell) gets Start 54ndc47; T1003.001 has only Windows abilities; the done
    # T1518 step stays as it was.
    assert (rest.updated, rest.unchanged) == (2, 2)
    assert any("T1003.001: no Caldera ability for linux" in w for w in rest.warnings)
    assert any("T1518: already done; left untouched" in w for w in rest.warnings)
    user = steps[5]
    assert (user.source, user.procedure_ref, user.command, user.connector, user.version) == (
        ProcedureSource.CALDERA, CHECK_LINUX[0][0], "whoami", "caldera", 2)
    assert [c["name"] for c in user.candidates] == ["Identify active user"]
    assert steps[4].procedure_name == "Start 54ndc47" and steps[4].connector == "caldera"
    assert steps[8].procedure_ref and len(steps[8].candidates) == 3  # 4 Linux T1083 abilities
    assert (steps[6].source, steps[6].command, steps[6].version) == (ProcedureSource.MANUAL, None, 1)
    assert steps[7].command is None
    assert {steps[i].source for i in (1, 2, 3)} == {ProcedureSource.ATOMIC}  # had commands: never considered
    with session_scope() as session:
        again = import_caldera_abilities(session, emulation_dco, server.client())
    assert again.updated == 0


def test_cli_imports_and_requires_configuration(server: CalderaServer, lab_dco: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCO_CALDERA_URL", raising=False)
    monkeypatch.delenv("DCO_CALDERA_API_KEY", raising=False)
    get_settings.cache_clear()
    unset = runner.invoke(emulate_cli.app, ["import-caldera-adversary", lab_dco, CHECK])
    assert unset.exit_code == 2
    assert "DCO_CALDERA_URL and DCO_CALDERA_API_KEY not set" in " ".join(unset.output.split())

    monkeypatch.setenv("DCO_CALDERA_URL", URL)
    monkeypatch.setenv("DCO_CALDERA_API_KEY", KEY)
    get_settings.cache_clear()
    monkeypatch.setattr(emulate_cli, "_registry", lambda: ConnectorRegistry.from_settings(
        transport=httpx.MockTransport(server)))
    out = runner.invoke(emulate_cli.app, ["import-caldera-adversary", lab_dco, CHECK, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["created"] == 7
    again = runner.invoke(emulate_cli.app, ["import-caldera-adversary", lab_dco, CHECK, "--json"])
    assert json.loads(again.output)["unchanged"] == 7
    missing = runner.invoke(emulate_cli.app, ["import-caldera-adversary", lab_dco, "no-such-adversary"])
    assert missing.exit_code == 2 and "no-such-adversary" in missing.output

    with session_scope() as session:
        session.add(_manual_step(lab_dco, 20, "T1033"))
    listed = runner.invoke(emulate_cli.app, ["caldera-abilities", lab_dco, "--technique", "T1033", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["updated"] == 1

