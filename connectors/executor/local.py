"""Run an emulation step's command on this lab host (sh/bash executors), inside the DCO's
rules of engagement.

Before anything runs, the command as it will run (input arguments filled in and quoted for the
shell, cleanup included) is checked against the rules of engagement: executor, platform, host,
forbidden techniques, elevation (the atomic's flag, or any means of elevation named anywhere in
the text), destructive procedures (``dcoflow.models.roe``), and writes outside the step's sandbox.
A refusal is an ExecutionError naming the step and the rule.

Every run carries the DCO marker twice: ``DCO_MARKER=DCO-<id>`` in the environment and a leading
``: DCO-<id>;`` no-op in the script, so the hunt side can tell exercise activity from real hits.

Each step runs in its own sandbox folder (its working folder, with its own HOME and TMPDIR
inside), as an unprivileged user when dcoflow runs as root and elevation is not allowed, in a new
session. When the command ends or times out its whole process tree is killed: the process group,
every descendant seen while it ran, and every process carrying the step's ``DCO_STEP`` token in its
environment (``setsid`` children included). The cleanup command then runs the same way and the
sandbox is removed. ``render`` / ``refusals`` give the exact commands and the verdict without
running anything (dry runs).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from dcoflow.core.errors import DcoError, ExecutionError
from dcoflow.models.emulation import ExecutionStatus, dco_marker
from dcoflow.models.operation import RulesOfEngagement, Scope, utcnow
from dcoflow.models.procedures import fill, normalise_platform, placeholders
from dcoflow.models.roe import command_only, destructive_reasons, elevation_means, fill_quoted, outside_writes

SHELLS: dict[str, str] = {"sh": "/bin/sh", "bash": "/bin/bash"}
OUTPUT_LIMIT = 64 * 1024
Override = Literal["destructive", "not-destructive"]


class StepLike(Protocol):
    """What the executor needs of a plan step (``dcoflow.models.plan.EmulationStep`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def technique_id(self) -> str: ...
    @property
    def tactic(self) -> str: ...
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


def default_sandbox() -> Path:
    """Where steps run when the caller names no sandbox (DCO_SANDBOX_DIR's default)."""
    return Path(tempfile.gettempdir()) / "dcoflow-sandbox"


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
    run_as: str


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
        sandbox: Path | None = None,
        host: str | None = None,
        platform: str | None = None,
        run_as: str | None = None,
    ) -> None:
        self.dco_id = dco_id
        self.roe = roe
        self.scope = scope
        if sandbox is None or run_as is None:  # values from the edge; else the configured ones
            from dcoflow.connectors.registry import configured

            settings = configured()
            sandbox = sandbox or settings.sandbox_dir
            run_as = run_as or settings.executor_user
        self.sandbox = sandbox or default_sandbox()
        self.host = host or socket.gethostname()
        self.platform = normalise_platform(platform or host_platform())
        self.marker = dco_marker(dco_id)
        self.run_as_user = run_as

    # -- who runs it ----------------------------------------------------------------------------------
    def _drops_privileges(self) -> bool:
        return os.geteuid() == 0 and not self.roe.requires_elevation_allowed

    def run_as(self) -> str:
        if self._drops_privileges():
            return self.run_as_user
        try:
            return pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            return str(os.geteuid())

    # -- rules of engagement ------------------------------------------------------------------------
    def _refuse(self, step: StepLike, reason: str, hint: str | None = None) -> ExecutionError:
        return ExecutionError(reason, object=f"step {step.id} ({step.technique_id})", hint=hint,
                              details={"step": step.id, "dco": self.dco_id})

    def workdir(self, step: StepLike) -> Path:
        return self.sandbox / _safe(self.dco_id) / _safe(step.id)

    def render(self, step: StepLike, args: Mapping[str, Any] | None = None) -> PreparedRun:
        """The exact scripts that would run (arguments filled in, quoted for the shell, marked).

        Raises ExecutionError when the step has no command or an argument is missing."""
        if not step.command or not step.command.strip():
            raise self._refuse(step, "step has no command to run")
        workdir = self.workdir(step)
        executor = (step.executor or "").lower()
        # ``#{sandbox}`` (also inside argument values) is the step's working folder: atomics that
        # write files (e.g. /tmp/T1082.txt) can be pointed into the sandbox.
        merged = {**argument_values(step.input_arguments), **argument_values(args or {})}
        values = {"sandbox": str(workdir), **{k: fill(v, {"sandbox": str(workdir)}) or "" for k, v in merged.items()}}
        missing = [n for t in (step.command, step.cleanup_command) for n in placeholders(t) if n not in values]
        if missing:
            raise self._refuse(step, "missing input argument(s) " + ", ".join(dict.fromkeys(missing)),
                               hint="give them in the step's input_arguments")
        used = {n: values[n] for t in (step.command, step.cleanup_command) for n in placeholders(t)}
        try:
            command = fill_quoted(step.command, values, executor) or ""
            cleanup = fill_quoted(step.cleanup_command, values, executor)
        except DcoError as exc:
            raise self._refuse(step, exc.reason, exc.hint) from exc
        return PreparedRun(
            step_id=step.id, executor=executor, command=self._mark(command),
            cleanup_command=self._mark(cleanup) if cleanup and cleanup.strip() else None,
            marker=self.marker, host=self.host, workdir=workdir, timeout_s=self.roe.max_step_seconds,
            arguments=used, run_as=self.run_as(),
        )

    def destructive(self, step: StepLike, prepared: PreparedRun, *, tactics: Iterable[str] = (),
                    override: Override | None = None) -> list[str]:
        """Why the step is destructive (empty: it is not), after the operator's override for it."""
        reasons = destructive_reasons(step.technique_id, [step.tactic, *tactics],
                                      [prepared.command, prepared.cleanup_command], sandbox=str(prepared.workdir))
        if override == "destructive":
            reasons.append("an operator marked the step destructive")
        elif override == "not-destructive":  # an operator may overrule what the text suggests, never the technique
            kept = [r for r in reasons if r not in command_only(reasons)]
            reasons = kept
        return reasons

    def refusals(
        self,
        step: StepLike,
        prepared: PreparedRun,
        *,
        elevation_required: bool = False,
        destructive: bool = False,
        tactics: Iterable[str] = (),
        override: Override | None = None,
    ) -> list[tuple[str, str | None]]:
        """Every rule of engagement the prepared run breaks, as (reason, hint); empty: allowed."""
        roe = self.roe
        out: list[tuple[str, str | None]] = []
        executor = prepared.executor
        allowed_exec = [e.lower() for e in roe.allowed_executors]
        if executor not in allowed_exec:
            out.append((f"executor {executor or 'none'!r} is not allowed by the rules of engagement",
                        "allowed: " + ", ".join(allowed_exec)))
        if executor not in SHELLS:
            out.append((f"executor {executor!r} is not supported by the local executor",
                        "the local executor runs sh and bash; use manual or caldera for this step"))
        allowed_platforms = [p.value for p in (roe.allowed_platforms or self.scope.platforms)]
        step_platform = normalise_platform(step.platform or self.platform)
        if step_platform not in allowed_platforms:
            out.append((f"platform {step_platform!r} is outside the rules of engagement",
                        "allowed: " + ", ".join(allowed_platforms)))
        elif step_platform != self.platform:
            out.append((f"step is for {step_platform} but this host runs {self.platform}", None))
        hosts = roe.allowed_hosts or self.scope.hosts
        if self.host not in hosts and "localhost" not in hosts:
            out.append((f"host {self.host!r} is not an allowed emulation host",
                        "add it to rules_of_engagement.allowed_hosts" if not hosts else "allowed: " + ", ".join(hosts)))
        tid = step.technique_id.upper()
        forbidden = {t.upper() for t in roe.forbidden_techniques}
        if tid in forbidden or tid.split(".")[0] in forbidden:
            out.append((f"technique {tid} is forbidden by the rules of engagement", None))
        if not roe.requires_elevation_allowed:
            means = elevation_means([prepared.command, prepared.cleanup_command])
            if elevation_required or means:
                why = "the procedure requires elevation" if elevation_required else \
                    "its command names " + ", ".join(means)
                out.append((f"step needs elevated privileges ({why}), which the rules of engagement do not allow",
                            "set rules_of_engagement.requires_elevation_allowed, or pick another procedure"))
        reasons = self.destructive(step, prepared, tactics=tactics, override=override)
        if destructive and "an operator marked the step destructive" not in reasons:
            reasons.append("the step is marked destructive")
        if reasons and not roe.destructive_allowed:
            out.append(("step is destructive, which the rules of engagement do not allow: " + "; ".join(reasons),
                        "set rules_of_engagement.destructive_allowed, or pick another procedure"))
        if executor in SHELLS:
            escapes = [u for s in (prepared.command, prepared.cleanup_command) if s
                       for u in outside_writes(s, str(prepared.workdir))]
            writes = [u.path for u in escapes if u.kind == "write"]
            if writes:
                out.append(("step writes outside its sandbox: " + ", ".join(dict.fromkeys(writes)),
                            "point the argument at #{sandbox}/… (the step's own folder)"))
        return out

    def check(self, step: StepLike, prepared: PreparedRun | None = None, args: Mapping[str, Any] | None = None,
              **rules: Any) -> PreparedRun:
        """Raise ExecutionError naming the step and the first broken rule; returns the prepared run."""
        prepared = prepared or self.render(step, args)
        broken = self.refusals(step, prepared, **rules)
        if broken:
            reason, hint = broken[0]
            raise self._refuse(step, reason, hint)
        return prepared

    def prepare(self, step: StepLike, args: Mapping[str, Any] | None = None, **rules: Any) -> PreparedRun:
        return self.check(step, None, args, **rules)

    def _mark(self, script: str) -> str:
        return f": {self.marker};\n{script}"

    # -- running ------------------------------------------------------------------------------------
    def run(
        self,
        step: StepLike,
        args: Mapping[str, Any] | None = None,
        *,
        dry_run: bool = False,
        elevation_required: bool = False,
        destructive: bool = False,
        tactics: Iterable[str] = (),
        override: Override | None = None,
    ) -> ExecutionResult:
        prepared = self.prepare(step, args, elevation_required=elevation_required, destructive=destructive,
                                tactics=tactics, override=override)
        started = utcnow()
        details: dict[str, Any] = {"arguments": prepared.arguments, "workdir": str(prepared.workdir),
                                   "executor": prepared.executor, "run_as": prepared.run_as}
        if dry_run:
            return ExecutionResult(
                step_id=step.id, status=ExecutionStatus.DRY_RUN, marker=self.marker, host=self.host,
                command=prepared.command, cleanup_command=prepared.cleanup_command,
                started_at=started, finished_at=started, details=details,
            )
        shell = SHELLS[prepared.executor]
        if not Path(shell).exists():
            raise self._refuse(step, f"{prepared.executor} is not installed on {self.host}")
        ids = self._user_ids(step)
        home, tmp = self._make_sandbox(step, prepared.workdir, ids)
        token = secrets.token_hex(8)
        env = self._environment(home, tmp, token, prepared.run_as)
        try:
            code, out, err, timed_out = _run(shell, prepared.command, prepared.workdir, env, prepared.timeout_s,
                                             ids, token)
            cleanup_code: int | None = None
            if prepared.cleanup_command:
                cleanup_code, c_out, c_err, _ = _run(shell, prepared.cleanup_command, prepared.workdir, env,
                                                     prepared.timeout_s, ids, token)
                if c_err:
                    err = _clip(err + "\n[cleanup] " + c_err)
                if c_out:
                    out = _clip(out + "\n[cleanup] " + c_out)
        finally:
            shutil.rmtree(prepared.workdir, ignore_errors=True)
        status = (ExecutionStatus.TIMED_OUT if timed_out
                  else ExecutionStatus.SUCCEEDED if code == 0 else ExecutionStatus.FAILED)
        return ExecutionResult(
            step_id=step.id, status=status, marker=self.marker, host=self.host,
            command=prepared.command, cleanup_command=prepared.cleanup_command,
            started_at=started, finished_at=utcnow(), exit_code=code, cleanup_exit_code=cleanup_code,
            stdout=out, stderr=err, details={**details, "timeout_s": prepared.timeout_s},
        )

    def _user_ids(self, step: StepLike) -> tuple[int, int] | None:
        """(uid, gid) to drop to, or None to run as ourselves."""
        if not self._drops_privileges():
            return None
        try:
            entry = pwd.getpwnam(self.run_as_user)
        except KeyError as exc:
            raise self._refuse(step, f"executor user {self.run_as_user!r} does not exist on {self.host}",
                               hint="create it or set DCO_EXECUTOR_USER to an unprivileged user") from exc
        if entry.pw_uid == 0:
            raise self._refuse(step, f"executor user {self.run_as_user!r} is root",
                               hint="set DCO_EXECUTOR_USER to an unprivileged user")
        return entry.pw_uid, entry.pw_gid

    def _make_sandbox(self, step: StepLike, workdir: Path, ids: tuple[int, int] | None) -> tuple[Path, Path]:
        """A fresh working folder with its own home and temp folder, owned by the user the step runs as."""
        shutil.rmtree(workdir, ignore_errors=True)  # a crashed earlier run's leftovers: ours to remove
        workdir.parent.mkdir(parents=True, exist_ok=True)
        for folder in (self.sandbox, workdir.parent):
            with contextlib.suppress(PermissionError):
                folder.chmod(0o711)  # others may pass through, not list
        home, tmp = workdir / "home", workdir / "tmp"
        for folder in (workdir, home, tmp):
            folder.mkdir(mode=0o700)
            if ids is not None:
                os.chown(folder, *ids)
        if ids is not None:
            for parent in workdir.parents:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    shutil.rmtree(workdir, ignore_errors=True)
                    raise self._refuse(step, f"the sandbox {workdir} is not reachable by {self.run_as_user}: "
                                             f"{parent} is closed to other users",
                                       hint="set DCO_SANDBOX_DIR to a folder every parent of which others may pass")
        return home, tmp

    def _environment(self, home: Path, tmp: Path, token: str, user: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "SHELL")}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update({"HOME": str(home), "TMPDIR": str(tmp), "USER": user, "LOGNAME": user,
                    "DCO_MARKER": self.marker, "DCO_ID": self.dco_id, "DCO_STEP": token})
        return env


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "step"


def _clip(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + f"\n… [{len(text) - OUTPUT_LIMIT} more bytes]"


# -- process trees ------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process; None when it is gone or a zombie (dead, awaiting its parent)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def alive(pid: int, start: int | None = None) -> bool:
    """Whether ``pid`` is a live (not zombie) process, and the same one when ``start`` is given."""
    st = _stat(pid)
    return st is not None and (start is None or st[1] == start)


def _all_pids() -> list[int]:
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


def _descendants(root: int) -> set[tuple[int, int]]:
    children: dict[int, list[tuple[int, int]]] = {}
    for pid in _all_pids():
        st = _stat(pid)
        if st is not None:
            children.setdefault(st[0], []).append((pid, st[1]))
    found: set[tuple[int, int]] = set()
    todo = [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if (pid, start) not in found:
                found.add((pid, start))
                todo.append(pid)
    return found


def _carrying(token: str) -> set[tuple[int, int]]:
    """Processes whose environment carries the step's token (they may have left its session)."""
    needle = f"DCO_STEP={token}".encode()
    found: set[tuple[int, int]] = set()
    for pid in _all_pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            st = _stat(pid)
            if st is not None:
                found.add((pid, st[1]))
    return found


def kill_tree(pgid: int, seen: set[tuple[int, int]], token: str) -> None:
    """SIGKILL the process group, every process seen in the tree (if it is still the same process)
    and every process carrying ``token``, until none is left (at most ~3 s)."""
    deadline = time.monotonic() + 3
    while True:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        targets = {p for p in seen if alive(*p)} | _carrying(token)
        if not targets or time.monotonic() > deadline:
            return
        for pid, _ in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _run(shell: str, script: str, cwd: Path, env: dict[str, str], timeout_s: int,
         ids: tuple[int, int] | None, token: str) -> tuple[int | None, str, str, bool]:
    """Run one script; when it ends or times out, kill everything it started."""
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        drop: dict[str, Any] = {"user": ids[0], "group": ids[1], "extra_groups": []} if ids is not None else {}
        proc = subprocess.Popen(  # the script is the rendered procedure, checked against the rules of engagement
            [shell, "-c", script], cwd=cwd, env=env, stdout=out_f, stderr=err_f, stdin=subprocess.DEVNULL,
            start_new_session=True, **drop,
        )
        seen: set[tuple[int, int]] = set()
        stop = threading.Event()

        def watch() -> None:  # descendants that detach (setsid, double fork) are remembered while they run
            while not stop.is_set():
                seen.update(_descendants(proc.pid))
                stop.wait(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            proc.wait(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            stop.set()
            watcher.join()
            kill_tree(proc.pid, seen, token)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return None if timed_out else proc.returncode, _read(out_f), _read(err_f), timed_out


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return _clip(handle.read(OUTPUT_LIMIT + 1024).decode("utf-8", "replace"))
