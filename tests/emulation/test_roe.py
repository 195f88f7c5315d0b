"""Rules of engagement enforced on the command as it will run: destructive procedures (technique,
command, operator override), every elevation bypass, arguments quoted as data, the step's own
sandbox (HOME, working folder, unprivileged user), its process tree killed at the timeout, and
writes outside the sandbox refused. Real atomics, real processes, a throw-away HOME."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcoflow.connectors.content.atomics import AtomicsIndex
from dcoflow.connectors.executor.local import LocalExecutor, alive
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ExecutionError
from dcoflow.core.settings import get_settings
from dcoflow.models.audit import AuditEvent
from dcoflow.models.emulation import EmulationExecution, ExecutionStatus
from dcoflow.models.plan import EmulationStep, ProcedureSource, StepStatus
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.roe import destructive_reasons, elevation_means, fill_quoted
from dcoflow.tasks.conduct.emulation.actions import preview_plan
from dcoflow.tasks.conduct.emulation.steps import execute_step, mark_destructive, preview_emulation

from .helpers import atomic_step, spec

DCO = "roe-lab"
CLEAR_HISTORY_RM = "a934276e-2be5-4a36-93fd-98adbb5bd4fc"  # T1070.003 Clear Bash history (rm): rm #{history_path}


def executor(**roe: Any) -> LocalExecutor:
    s = spec(**roe)
    # the sandbox comes from settings at the edge (DCO_SANDBOX_DIR, the sandbox fixture's folder)
    return LocalExecutor(DCO, s.rules_of_engagement, s.scope, platform="linux", sandbox=get_settings().sandbox_dir)


def custom(command: str, cleanup: str | None = None, **extra: Any) -> EmulationStep:
    fields: dict[str, Any] = {"id": "custom", "dco_id": DCO, "order": 9, "tactic": "discovery",
                              "technique_id": "T1082", "technique_name": "System Information Discovery",
                              "source": ProcedureSource.MANUAL, "procedure_name": "custom", "platform": "linux",
                              "executor": "sh", "command": command, "cleanup_command": cleanup, "connector": "local"}
    fields.update(extra)
    return EmulationStep(**fields)


# -- destructive ------------------------------------------------------------------------------------------


def test_destructive_atomic_is_refused_and_the_file_stays(emulation_dco: str, shared_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           atomics: AtomicsIndex) -> None:
    home = tmp_path / "home"  # a throw-away HOME holding the history the atomic would delete
    home.mkdir()
    history = home / ".bash_history"
    history.write_text("ls\n")
    monkeypatch.setenv("HOME", str(home))
    with session_scope() as s:
        step = atomic_step(shared_dir, emulation_dco, 5, CLEAR_HISTORY_RM, tactic="defense-evasion",
                           input_arguments={"history_path": str(history)})
        s.add(step)
    with session_scope() as s:
        op, step = get_operation(s, emulation_dco), s.get(EmulationStep, f"{emulation_dco}-s5")
        assert step is not None
        with pytest.raises(ExecutionError) as err:
            execute_step(s, step, op, dry_run=False, atomics=atomics)
    assert "destructive" in str(err.value) and "T1070.003" in str(err.value)
    assert history.read_text() == "ls\n"
    with session_scope() as s:
        step = s.get(EmulationStep, f"{emulation_dco}-s5")
        assert step is not None and step.status == StepStatus.FAILED  # visible, and later steps wait
        refused = s.query(EmulationExecution).filter_by(step_id=step.id).one()
        assert refused.status == ExecutionStatus.REFUSED and "destructive" in refused.details["error"]["reason"]
        assert s.query(AuditEvent).filter_by(dco_id=emulation_dco, action="emulation-refused").count() == 1
    from dcoflow.flows.cli.emulate import app

    res = CliRunner().invoke(app, ["steps", emulation_dco, "--json"])
    listed = next(r for r in json.loads(res.stdout) if r["order"] == 5)
    assert listed["status"] == "failed" and "destructive" in listed["refused"]


@pytest.mark.parametrize(
    ("technique", "tactic", "command", "needle"),
    [
        ("T1485", "impact", "echo hi", "data destruction"),
        ("T1059.004", "impact", "echo hi", "Impact tactic"),
        ("T1529", "impact", "echo hi", "shutdown"),
        ("T1082", "discovery", "vssadmin delete shadows /all /quiet", "shadow copy removal"),
        ("T1082", "discovery", "wmic shadowcopy delete", "shadow copy removal"),
        ("T1082", "discovery", "bcdedit /set {default} recoveryenabled no", "boot configuration"),
        ("T1082", "discovery", "cipher /w:C:", "free-space wipe"),
        ("T1082", "discovery", "systemctl stop auditd", "service stop"),
        ("T1082", "discovery", "shutdown -h now", "shutdown"),
        ("T1082", "discovery", "rm -rf /var/log/audit", "deletes '/var/log/audit' outside"),
        ("T1082", "discovery", "echo '' > /root/.bash_history", "overwrites '/root/.bash_history'"),
        ("T1082", "discovery", "rm $LOGDIR/x", "deletes '$LOGDIR/x' outside"),
        ("T1082", "discovery", "dd if=/dev/zero of=/dev/sda", "raw disk write"),
    ],
)
def test_what_counts_as_destructive(technique: str, tactic: str, command: str, needle: str) -> None:
    reasons = destructive_reasons(technique, [tactic], [command], sandbox="/sb/step")
    assert any(needle in r for r in reasons), reasons


def test_own_files_in_the_sandbox_are_not_destructive() -> None:
    assert destructive_reasons("T1082", ["discovery"], ["uname -a >> /sb/step/out.txt", "rm /sb/step/out.txt "
                                                        "2>/dev/null", "rm out.txt"], sandbox="/sb/step") == []


def test_operator_override_is_audited_and_never_clears_the_technique(emulation_dco: str, atomics: AtomicsIndex) -> None:
    with session_scope() as s:
        step = s.get(EmulationStep, f"{emulation_dco}-s3")
        assert step is not None
        step.command = "w; rm /srv/dco-made-this.txt"  # the text looks destructive
        s.add(step)
        with pytest.raises(Exception, match="reason"):
            mark_destructive(s, emulation_dco, "3", False, actor="carol", reason=" ")
    with session_scope() as s:
        p3 = next(p for p in preview_emulation(s, emulation_dco, atomics=atomics) if p.order == 3)
        assert p3.verdict == "refused" and "destructive" in p3.reasons[0]
        ev = mark_destructive(s, emulation_dco, "3", False, actor="carol", reason="the file is one our setup made")
        assert (ev.actor, ev.details["reason"]) == ("carol", "the file is one our setup made")
    with session_scope() as s:
        p3 = next(p for p in preview_emulation(s, emulation_dco, atomics=atomics) if p.order == 3)
        assert not any("destructive" in r for r in p3.reasons)
        mark_destructive(s, emulation_dco, "1", True, actor="carol", reason="touches a shared host")
    with session_scope() as s:
        p1 = next(p for p in preview_emulation(s, emulation_dco, atomics=atomics) if p.order == 1)
        assert p1.verdict == "refused" and "operator marked the step destructive" in p1.reasons[0]
    ex = executor()
    t1070 = custom("echo hi", technique_id="T1070.003")
    with pytest.raises(ExecutionError, match="indicator removal"):
        ex.run(t1070, dry_run=True, override="not-destructive")


# -- elevation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "cleanup", "args"),
    [
        ("sudo id", None, {}),
        ("su -c id", None, {}),
        ("su root -c 'id'", None, {}),
        ("doas id", None, {}),
        ("pkexec id", None, {}),
        ("S=sudo; $S id", None, {}),
        ("s''udo id", None, {}),
        ('s"u"do id', None, {}),
        ("id", "sudo rm -f x", {}),
        ("#{cmd} id", None, {"cmd": "sudo"}),
        ("echo #{x}", None, {"x": "$(sudo id)"}),
        ("runas /user:Administrator cmd", None, {}),
    ],
)
def test_each_elevation_bypass_is_refused(command: str, cleanup: str | None, args: dict[str, str]) -> None:
    with pytest.raises(ExecutionError, match="elevated privileges"):
        executor().run(custom(command, cleanup, input_arguments=args), dry_run=True)


def test_elevation_required_by_the_procedure(emulation_dco: str) -> None:
    assert elevation_means(["id; whoami"]) == []
    with pytest.raises(ExecutionError, match="requires elevation"):
        executor().run(custom("id"), dry_run=True, elevation_required=True)


def test_ctid_elevation_required_is_honoured(emulation_dco: str, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"

    def write(elevation: str) -> None:
        plan.write_text(
            "- emulation_plan_details: {id: p1, adversary_name: Lab, attack_version: '18', format_version: 1.0}\n"
            "- id: ctid-1\n  name: Read shadow\n  description: d\n  tactic: discovery\n  technique: "
            "{attack_id: T1082, name: System Information Discovery}\n  procedure_group: g\n  procedure_step: '1.A.1'\n"
            "  platforms:\n    linux:\n      sh:\n        command: id\n"
            f"  executors:\n    - name: sh\n      command: id\n      elevation_required: {elevation}\n"
        )

    write("true")
    with session_scope() as s:
        op = get_operation(s, emulation_dco)
        op.spec = {**op.spec, "threat_profile": {**op.spec["threat_profile"], "emulation_plan": str(plan)}}
        s.add(op)
        s.add(EmulationStep(id=f"{emulation_dco}-c1", dco_id=emulation_dco, order=7, tactic="discovery",
                            technique_id="T1082", technique_name="System Information Discovery",
                            source=ProcedureSource.CTID, procedure_ref="ctid-1", procedure_name="Read shadow",
                            platform="linux", executor="sh", command="id", connector="local"))
    # the use case reads the DCO's plan (threat_profile.emulation_plan) once and takes the flag from it
    c1 = next(p for p in preview_plan(emulation_dco)["steps"] if p["order"] == 7)
    assert c1["verdict"] == "refused" and "requires elevation" in c1["reasons"][0]
    write("false")
    assert next(p for p in preview_plan(emulation_dco)["steps"] if p["order"] == 7)["verdict"] == "allowed"
    plan.unlink()  # a plan that cannot be read: its steps count as needing elevation
    c1 = next(p for p in preview_plan(emulation_dco)["steps"] if p["order"] == 7)
    assert c1["verdict"] == "refused" and "requires elevation" in c1["reasons"][0]


def test_steps_run_unprivileged_in_their_own_home(sandbox: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("privileges are dropped only when dcoflow runs as root")
    result = executor().run(custom("id -u; echo HOME=$HOME; pwd; touch ~/mine && ls ~"), dry_run=False)
    lines = result.stdout.splitlines()
    assert lines[0] == "65534" and result.details["run_as"] == "nobody"
    workdir = sandbox / DCO / "custom"
    assert f"HOME={workdir / 'home'}" in lines and str(workdir) in lines and "mine" in lines
    assert not workdir.exists()  # removed after the step
    allowed = executor(requires_elevation_allowed=True).run(custom("id -u"), dry_run=False)
    assert allowed.stdout.strip() == "0"


# -- quoting ----------------------------------------------------------------------------------------------


def test_injection_in_an_argument_runs_as_data(sandbox: Path, tmp_path: Path) -> None:
    attack = "hello; echo INJECTED > injected.txt"
    step = custom("echo #{msg} > said.txt; echo \"#{msg}\" >> said.txt; echo '#{msg}' >> said.txt; ls",
                  input_arguments={"msg": attack})
    result = executor().run(step, dry_run=False)
    assert result.status == ExecutionStatus.SUCCEEDED, result.stderr
    assert "injected.txt" not in result.stdout.split()  # ls of the sandbox: only said.txt
    assert not (tmp_path / "injected.txt").exists() and not Path("injected.txt").exists()
    for value in ("$(touch pwned)", "`touch pwned`", "a'b\"c$HOME"):
        out = executor().run(custom("printf '%s|' #{v} \"#{v}\" '#{v}'; ls", input_arguments={"v": value}),
                             dry_run=False)
        assert out.stdout.startswith(f"{value}|{value}|{value}|"), out.stdout
        assert out.stdout.rsplit("|", 1)[-1].split() == ["home", "tmp"]  # ls: nothing was touched


def test_quoting_per_executor() -> None:
    value = "a'b; c"
    assert fill_quoted("Write-Host #{v}", {"v": value}, "powershell") == "Write-Host 'a''b; c'"
    assert fill_quoted('Write-Host "#{v}"', {"v": "$x`"}, "powershell") == 'Write-Host "`$x``"'
    assert fill_quoted("echo #{v}", {"v": "plain"}, "command_prompt") == "echo plain"
    with pytest.raises(Exception, match="cmd metacharacter"):
        fill_quoted("echo #{v}", {"v": "x & del *"}, "command_prompt")


# -- process tree and sandbox --------------------------------------------------------------------------------


def test_setsid_child_is_killed_at_the_timeout(sandbox: Path) -> None:
    step = custom("setsid sleep 300 & echo $!; sleep 300")
    started = time.monotonic()
    result = executor(max_step_seconds=2).run(step, dry_run=False)
    assert result.status == ExecutionStatus.TIMED_OUT and time.monotonic() - started < 15
    pids = [int(p) for p in re.findall(r"^\d+$", result.stdout, re.MULTILINE)]
    assert pids, result.stdout
    for pid in pids:
        assert not alive(pid), f"setsid child {pid} survived the timeout"


def test_detached_child_of_a_finished_step_is_killed(sandbox: Path) -> None:
    result = executor().run(custom("setsid sleep 301 & echo $!"), dry_run=False)
    pid = int(result.stdout.split()[0])
    assert result.status == ExecutionStatus.SUCCEEDED and not alive(pid)


@pytest.mark.parametrize(
    "command",
    ["echo x > /etc/dco-escape.txt", "echo x >> /tmp/dco-escape.txt", "touch /var/tmp/dco-escape",
     "cp /etc/hostname /tmp/dco-escape", "echo x | tee /tmp/dco-escape", "mkdir /tmp/dco-escape-dir",
     "cd /tmp && echo x >> dco-escape.txt", "cd ..; touch dco-escape", "P=/tmp; echo x >> $P/dco-escape.txt",
     'echo x >> "$(echo /tmp)/dco-escape.txt"'],
)
def test_write_outside_the_sandbox_is_refused(command: str) -> None:
    with pytest.raises(ExecutionError, match=r"outside its sandbox|destructive"):
        executor().run(custom(command), dry_run=True)
    assert not Path("/tmp/dco-escape.txt").exists() and not Path("/etc/dco-escape.txt").exists()


def test_write_inside_the_sandbox_runs(sandbox: Path) -> None:
    result = executor().run(custom("echo x > #{sandbox}/a.txt; cat a.txt; echo y > $TMPDIR/b; cat $TMPDIR/b"),
                            dry_run=False)
    assert result.status == ExecutionStatus.SUCCEEDED and result.stdout.split() == ["x", "y"]


def test_host_check_uses_the_real_host_name() -> None:
    assert executor().host == socket.gethostname()
