"""Run an emulation step's command on this lab host (sh/bash executors), inside the DCO's
rules of engagement.

Before anything runs, the step is checked against the rules of engagement (executor, platform,
host, forbidden techniques, elevation, destructive steps); a refusal is an ExecutionError
naming the step and the rule. Every run carries the DCO marker twice: ``DCO_MARKER=DCO-<id>``
in the environment and a leading ``: DCO-<id>;`` no-op in the shell script, so the marker
shows in process command lines and the hunt side can tell exercise activity from real hits.
The command runs in a per-step working directory under the sandbox (also its TMPDIR), with a
timeout that kills the whole process group, and the cleanup command always runs afterwards.
``dry_run=True`` returns the exact commands, arguments filled in, without running them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from dcoflow.core.errors import ExecutionError
from dcoflow.models.emulation import ExecutionStatus, dco_marker
from dcoflow.models.operation import RulesOfEngagement, Scope, utcnow
from dcoflow.models.procedures import fill, normalise_platform, placeholders

SHELLS: dict[str, str] = {"sh": "/bin/sh", "bash": "/bin/bash"}
OUTPUT_LIMIT = 64 * 1024
_SUDO = re.compile(r"(^|[\s;&|(])sudo\s")


class StepLike(Protocol):
    """What the executor needs of a plan step (``dcoflow.models.plan.EmulationStep`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def technique_id(self) -> str: ...
    @property
    def platform(self) -> str | None: ...
    @property
    def executor(self) -> str | None: ...
    @property
    def command(self) -> str | None: ...
    @property
    def cleanup_command(self) -> str | None: ...
    @property
    def input_arguments(self) -> dict[str, Any]: ...


def host_platform() -> str:
    return {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)


def argument_values(arguments: Mapping[str, Any]) -> dict[str, str]:
    """Values from a step's ``input_arguments``: plain values, or atomic-style specs with a default."""
    out: dict[str, str] = {}
    for name, value in arguments.items():
        if isinstance(value, Mapping):
            if "value" in value and value["value"] is not None:
                out[name] = str(value["value"])
            elif value.get("default") is not None:
                out[name] = str(value["default"])
        elif value is not None:
            out[name] = str(value)
    return out


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """Exactly what will run: the marked scripts, where, and with which marker."""

    step_id: str
    executor: str
    command: str
    cleanup_command: str | None
    marker: str
    host: str
    workdir: Path
    timeout_s: int
    arguments: dict[str, str]


@dataclass(slots=True)
class ExecutionResult:
    step_id: str
    status: ExecutionStatus
    marker: str
    host: str
    command: str
    cleanup_command: str | None
    started_at: datetime
    finished_at: datetime
    exit_code: int | None = None
    cleanup_exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return self.status == ExecutionStatus.DRY_RUN


class LocalExecutor:
    """Runs steps on this host for one DCO under its rules of engagement."""

    def __init__(
        self,
        dco_id: str,
        roe: RulesOfEngagement,
        scope: Scope,
        *,
        sandbox: Path,
        host: str | None = None,
        platform: str | None = None,
    ) -> None:
        self.dco_id = dco_id
        self.roe = roe
        self.scope = scope
        self.sandbox = sandbox
        self.host = host or socket.gethostname()
        self.platform = normalise_platform(platform or host_platform())
        self.marker = dco_marker(dco_id)

    # -- rules of engagement ------------------------------------------------------------------
    def _refuse(self, step: StepLike, reason: str, hint: str | None = None) -> ExecutionError:
        return ExecutionError(reason, object=f"step {step.id} ({step.technique_id})", hint=hint,
                              details={"step": step.id, "dco": self.dco_id})

    def check(self, step: StepLike, *, elevation_required: bool = False, destructive: bool = False) -> None:
        """Raise ExecutionError naming the step unless the rules of engagement allow it here."""
        roe = self.roe
        executor = (step.executor or "").lower()
        allowed_exec = [e.lower() for e in roe.allowed_executors]
        if executor not in allowed_exec:
            raise self._refuse(step, f"executor {executor or 'none'!r} is not allowed by the rules of engagement",
                               hint="allowed: " + ", ".join(allowed_exec))
        if executor not in SHELLS:
            raise self._refuse(step, f"executor {executor!r} is not supported by the local executor",
                               hint="the local executor runs sh and bash; use manual or caldera for this step")
        allowed_platforms = [p.value for p in (roe.allowed_platforms or self.scope.platforms)]
        step_platform = normalise_platform(step.platform or self.platform)
        if step_platform not in allowed_platforms:
            raise self._refuse(step, f"platform {step_platform!r} is outside the rules of engagement",
                               hint="allowed: " + ", ".join(allowed_platforms))
        if step_platform != self.platform:
            raise self._refuse(step, f"step is for {step_platform} but this host runs {self.platform}")
        hosts = roe.allowed_hosts or self.scope.hosts
        if self.host not in hosts and "localhost" not in hosts:
            raise self._refuse(step, f"host {self.host!r} is not an allowed emulation host",
                               hint="add it to rules_of_engagement.allowed_hosts" if not hosts
                               else "allowed: " + ", ".join(hosts))
        tid = step.technique_id.upper()
        forbidden = {t.upper() for t in roe.forbidden_techniques}
        if tid in forbidden or tid.split(".")[0] in forbidden:
            raise self._refuse(step, f"technique {tid} is forbidden by the rules of engagement")
        needs_root = elevation_required or bool(_SUDO.search(step.command or ""))
        if needs_root and not roe.requires_elevation_allowed:
            raise self._refuse(step, "step needs elevated privileges, which the rules of engagement do not allow",
                               hint="set rules_of_engagement.requires_elevation_allowed, or pick another procedure")
        if destructive and not roe.destructive_allowed:
            raise self._refuse(step, "step is destructive, which the rules of engagement do not allow")

    # -- preparation --------------------------------------------------------------------------
    def prepare(self, step: StepLike, args: Mapping[str, Any] | None = None, **checks: bool) -> PreparedRun:
        self.check(step, **checks)
        if not step.command or not step.command.strip():
            raise self._refuse(step, "step has no command to run")
        workdir = self.sandbox / self.dco_id / _safe(step.id)
        # ``#{sandbox}`` (also inside argument values) is the step's working directory: atomics that
        # write files (e.g. /tmp/T1082.txt) can be pointed into the sandbox.
        merged = {**argument_values(step.input_arguments), **argument_values(args or {})}
        values = {"sandbox": str(workdir), **{k: fill(v, {"sandbox": str(workdir)}) or "" for k, v in merged.items()}}
        missing = [n for t in (step.command, step.cleanup_command) for n in placeholders(t) if n not in values]
        if missing:
            raise self._refuse(step, "missing input argument(s) " + ", ".join(dict.fromkeys(missing)),
                               hint="give them in the step's input_arguments")
        used = {n: values[n] for t in (step.command, step.cleanup_command) for n in placeholders(t)}
        command = self._mark(fill(step.command, values) or "")
        cleanup = fill(step.cleanup_command, values)
        return PreparedRun(
            step_id=step.id,
            executor=(step.executor or "").lower(),
            command=command,
            cleanup_command=self._mark(cleanup) if cleanup and cleanup.strip() else None,
            marker=self.marker,
            host=self.host,
            workdir=workdir,
            timeout_s=self.roe.max_step_seconds,
            arguments=used,
        )

    def _mark(self, script: str) -> str:
        return f": {self.marker};\n{script}"

    # -- running ------------------------------------------------------------------------------
    def run(
        self,
        step: StepLike,
        args: Mapping[str, Any] | None = None,
        *,
        dry_run: bool = False,
        elevation_required: bool = False,
        destructive: bool = False,
    ) -> ExecutionResult:
        prepared = self.prepare(step, args, elevation_required=elevation_required, destructive=destructive)
        started = utcnow()
        if dry_run:
            return ExecutionResult(
                step_id=step.id, status=ExecutionStatus.DRY_RUN, marker=self.marker, host=self.host,
                command=prepared.command, cleanup_command=prepared.cleanup_command,
                started_at=started, finished_at=started,
                details={"arguments": prepared.arguments, "workdir": str(prepared.workdir),
                         "executor": prepared.executor},
            )
        prepared.workdir.mkdir(parents=True, exist_ok=True)
        shell = SHELLS[prepared.executor]
        if not Path(shell).exists() and shutil.which(prepared.executor) is None:
            raise self._refuse(step, f"{prepared.executor} is not installed on {self.host}")
        env = self._environment(prepared.workdir)
        code, out, err, timed_out = _run(shell, prepared.command, prepared.workdir, env, prepared.timeout_s)
        cleanup_code: int | None = None
        if prepared.cleanup_command:
            cleanup_code, c_out, c_err, _ = _run(shell, prepared.cleanup_command, prepared.workdir, env,
                                                  prepared.timeout_s)
            if c_err:
                err = _clip(err + "\n[cleanup] " + c_err)
            if c_out:
                out = _clip(out + "\n[cleanup] " + c_out)
        status = (ExecutionStatus.TIMED_OUT if timed_out
                  else ExecutionStatus.SUCCEEDED if code == 0 else ExecutionStatus.FAILED)
        return ExecutionResult(
            step_id=step.id, status=status, marker=self.marker, host=self.host,
            command=prepared.command, cleanup_command=prepared.cleanup_command,
            started_at=started, finished_at=utcnow(), exit_code=code, cleanup_exit_code=cleanup_code,
            stdout=out, stderr=err,
            details={"arguments": prepared.arguments, "workdir": str(prepared.workdir), "executor": prepared.executor,
                     "timeout_s": prepared.timeout_s},
        )

    def _environment(self, workdir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "USER", "LOGNAME", "SHELL")}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update({"HOME": os.environ.get("HOME", str(workdir)), "TMPDIR": str(workdir),
                    "DCO_MARKER": self.marker, "DCO_ID": self.dco_id})
        return env


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "step"


def _clip(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + f"\n… [{len(text) - OUTPUT_LIMIT} more bytes]"


def _run(shell: str, script: str, cwd: Path, env: dict[str, str], timeout_s: int) -> tuple[int | None, str, str, bool]:
    """Run one script; on timeout kill its whole process group (atomics often start children)."""
    proc = subprocess.Popen(  # the script is the rendered procedure, checked against the rules of engagement
        [shell, "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        out, err = b"", b""
        while time.monotonic() < deadline:
            try:
                out, err = proc.communicate(timeout=1)
                break
            except subprocess.TimeoutExpired:
                continue
    return (
        None if timed_out else proc.returncode,
        _clip(out.decode("utf-8", "replace")),
        _clip(err.decode("utf-8", "replace")),
        timed_out,
    )
