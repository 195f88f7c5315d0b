"""The local executor against harmless Linux discovery atomics, in a temporary sandbox."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from dcoflow.connectors.executor.local import LocalExecutor
from dcoflow.core.errors import ExecutionError
from dcoflow.core.settings import get_settings
from dcoflow.models.emulation import ExecutionStatus
from dcoflow.models.plan import EmulationStep, ProcedureSource

from .helpers import ENV_DISCOVERY, LIST_OS_INFO, USER_DISCOVERY, atomic_step, spec

DCO = "lab-dco"


def executor(tmp_path: Path, **roe: Any) -> LocalExecutor:
    s = spec(**roe)
    # the sandbox comes from settings at the edge (DCO_SANDBOX_DIR, the sandbox fixture's folder)
    return LocalExecutor(DCO, s.rules_of_engagement, s.scope, platform="linux", sandbox=get_settings().sandbox_dir)


def custom(command: str, **extra: Any) -> EmulationStep:
    fields: dict[str, Any] = {"id": "custom", "dco_id": DCO, "order": 9, "tactic": "discovery",
                              "technique_id": "T1082", "technique_name": "System Information Discovery",
                              "source": ProcedureSource.MANUAL, "procedure_name": "custom", "platform": "linux",
                              "executor": "sh", "command": command, "connector": "local"}
    fields.update(extra)
    return EmulationStep(**fields)


def test_runs_atomic_in_sandbox_then_cleans_up(tmp_path: Path, shared_dir: Path, sandbox: Path) -> None:
    step = atomic_step(shared_dir, DCO, 1, LIST_OS_INFO, input_arguments={"output_file": "#{sandbox}/os.txt"})
    result = executor(tmp_path).run(step, dry_run=False)
    assert result.status == ExecutionStatus.SUCCEEDED and result.exit_code == 0
    assert "Linux" in result.stdout  # uname -a
    workdir = sandbox / DCO / step.id
    assert str(workdir / "os.txt") in result.command
    assert result.cleanup_exit_code == 0 and not workdir.exists()  # cleaned up, then the sandbox removed
    assert result.command.startswith(f": DCO-{DCO};\n")


def test_marker_is_in_the_environment(tmp_path: Path, shared_dir: Path, sandbox: Path) -> None:
    result = executor(tmp_path).run(atomic_step(shared_dir, DCO, 2, ENV_DISCOVERY), dry_run=False)
    assert f"DCO_MARKER=DCO-{DCO}" in result.stdout
    workdir = sandbox / DCO / f"{DCO}-s2"
    assert f"TMPDIR={workdir / 'tmp'}" in result.stdout and f"HOME={workdir / 'home'}" in result.stdout


def test_second_discovery_atomic(tmp_path: Path, shared_dir: Path) -> None:
    result = executor(tmp_path).run(atomic_step(shared_dir, DCO, 3, USER_DISCOVERY), dry_run=False)
    assert result.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)  # `w` may exit 1 without a tty
    assert result.exit_code is not None and result.marker == f"DCO-{DCO}"


def test_dry_run_shows_exact_commands_and_runs_nothing(tmp_path: Path, shared_dir: Path, sandbox: Path) -> None:
    step = atomic_step(shared_dir, DCO, 1, LIST_OS_INFO)
    out = f"{sandbox}/{DCO}/{step.id}/x.txt"
    result = executor(tmp_path).run(step, {"output_file": "#{sandbox}/x.txt"}, dry_run=True)
    assert result.dry_run and result.exit_code is None
    assert f"uname -a >> {out}" in result.command
    assert result.cleanup_command is not None and f"rm {out}" in result.cleanup_command
    assert result.details["arguments"] == {"output_file": out}
    assert not any(sandbox.iterdir())


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    result = executor(tmp_path, max_step_seconds=1).run(custom("sleep 30 & sleep 30"), dry_run=False)
    assert result.status == ExecutionStatus.TIMED_OUT and result.exit_code is None


@pytest.mark.parametrize(
    ("step_fields", "roe", "needle"),
    [
        ({"executor": "powershell"}, {"allowed_executors": ["sh", "powershell"]}, "not supported by the local"),
        ({"executor": "bash"}, {"allowed_executors": ["sh"]}, "'bash' is not allowed"),
        ({"platform": "windows"}, {}, "platform 'windows' is outside"),
        ({"platform": "macos"}, {"allowed_platforms": ["linux", "macos"]}, "this host runs linux"),
        ({}, {"allowed_hosts": ["other-lab-host"]}, "not an allowed emulation host"),
        ({"technique_id": "T1082.001"}, {"forbidden_techniques": ["T1082"]}, "forbidden"),
        ({"command": "sudo id"}, {}, "elevated privileges"),
        ({"command": "cat #{secret_file}"}, {}, "missing input argument(s) secret_file"),
    ],
)
def test_rules_of_engagement_refusals_name_the_step(
    tmp_path: Path, step_fields: dict[str, Any], roe: dict[str, Any], needle: str
) -> None:
    step = custom(step_fields.pop("command", "uname -a"), **step_fields)
    with pytest.raises(ExecutionError) as err:
        executor(tmp_path, **roe).run(step, dry_run=True)
    assert needle in str(err.value)
    assert "step custom" in str(err.value)


def test_elevation_flag_from_the_atomic(tmp_path: Path) -> None:
    with pytest.raises(ExecutionError, match="elevated"):
        executor(tmp_path).run(custom("id"), dry_run=True, elevation_required=True)
    ok = executor(tmp_path, requires_elevation_allowed=True).run(custom("id"), dry_run=True, elevation_required=True)
    assert ok.dry_run


def test_empty_allowed_hosts_falls_back_to_scope_hosts(tmp_path: Path) -> None:
    result = executor(tmp_path, allowed_hosts=[]).run(custom("true"), dry_run=True)
    assert result.host == socket.gethostname()
