"""Emulation procedures as content defines them: Atomic Red Team tests and CTID emulation
plan steps, plus rendering a procedure's ``#{argument}`` placeholders into the exact command
an executor runs. Pure data; the readers live in ``connectors/content``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dcoflow.core.errors import ValidationError
from dcoflow.models.attack.catalog import TECHNIQUE_ID as TECHNIQUE_ID  # noqa: PLC0414  (re-exported for content readers)

# Atomic Red Team and CTID plans both write arguments as #{name}; CTID names may contain dots.
PLACEHOLDER = re.compile(r"#\{([^}\s]+)\}")

# Platform names differ between ATT&CK, Atomic Red Team and CTID plans; match on one spelling.
_PLATFORM_ALIASES: dict[str, str] = {
    "darwin": "macos",
    "mac": "macos",
    "osx": "macos",
    "office-365": "office suite",
    "google-workspace": "office suite",
    "azure-ad": "identity provider",
}


def normalise_platform(name: str) -> str:
    """One lower-case spelling per platform (``darwin`` → ``macos``, ``iaas:aws`` → ``iaas``)."""
    low = name.strip().lower()
    low = low.split(":", 1)[0] if low.startswith("iaas:") else low
    return _PLATFORM_ALIASES.get(low, low)


def placeholders(text: str | None) -> list[str]:
    """The argument names a command refers to, in first-use order."""
    if not text:
        return []
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def fill(text: str | None, values: Mapping[str, str]) -> str | None:
    """Replace every ``#{name}`` that has a value; leave the others as they are."""
    if text is None:
        return None
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True, slots=True)
class InputArgument:
    description: str = ""
    type: str = "string"
    default: str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> InputArgument:
        """An Atomic Red Team ``input_arguments`` entry (atomics and CTID plans share the shape);
        YAML may read a default as a number, so it is kept as text."""
        default = spec.get("default")
        return cls(
            description=str(spec.get("description") or "").strip(),
            type=str(spec.get("type") or "string").lower(),
            default=None if default is None else str(default),
        )


@dataclass(frozen=True, slots=True)
class Dependency:
    description: str
    prereq_command: str
    get_prereq_command: str


@dataclass(frozen=True, slots=True)
class RenderedCommand:
    """A procedure with its arguments filled in: exactly what an executor would run."""

    procedure: str
    executor: str
    command: str | None
    cleanup_command: str | None
    arguments: dict[str, str]
    prereq_commands: list[str] = field(default_factory=list)


def resolve_arguments(
    owner: str,
    declared: Mapping[str, InputArgument],
    texts: list[str | None],
    given: Mapping[str, Any] | None,
) -> dict[str, str]:
    """Values for every placeholder used in ``texts``: given values first, then defaults.

    Raises ValidationError naming ``owner`` and every argument that has neither.
    """
    given = given or {}
    values: dict[str, str] = {}
    missing: list[str] = []
    for text in texts:
        for name in placeholders(text):
            if name in values or name in missing:
                continue
            if name in given and given[name] is not None:
                values[name] = str(given[name])
            elif name in declared and declared[name].default is not None:
                values[name] = str(declared[name].default)
            else:
                missing.append(name)
    if missing:
        undeclared = [m for m in missing if m not in declared]
        raise ValidationError(
            "missing input argument(s) " + ", ".join(missing),
            object=owner,
            field=missing[0],
            hint="pass them as arguments"
            + (f"; not declared by the procedure: {', '.join(undeclared)}" if undeclared else ""),
        )
    return values


@dataclass(frozen=True, slots=True)
class AtomicTest:
    guid: str
    technique_id: str
    name: str
    description: str
    platforms: list[str]
    executor: str
    command: str | None
    cleanup_command: str | None
    elevation_required: bool
    input_arguments: dict[str, InputArgument]
    dependencies: list[Dependency]
    dependency_executor_name: str | None
    manual_steps: str | None = None
    source: str | None = None

    @property
    def label(self) -> str:
        return f"atomic {self.technique_id} '{self.name}' ({self.guid})"

    def supports(self, platform: str) -> bool:
        want = normalise_platform(platform)
        return any(normalise_platform(p) == want for p in self.platforms)

    def missing_arguments(self, args: Mapping[str, Any] | None = None) -> list[str]:
        """Arguments the command needs that neither ``args`` nor a default supplies (no exception)."""
        given = args or {}
        texts = [self.command, self.cleanup_command, *(d.prereq_command for d in self.dependencies)]
        return [
            n for n in dict.fromkeys(x for t in texts for x in placeholders(t))
            if given.get(n) is None and (n not in self.input_arguments or self.input_arguments[n].default is None)
        ]

    def render(self, args: Mapping[str, Any] | None = None) -> RenderedCommand:
        """Fill ``#{arg}`` from ``args`` then the declared defaults (command, cleanup, prerequisites).

        A declared argument without a default (e.g. a password) must be given; pass ``""`` to leave
        an optional one empty.
        """
        if self.command is None:
            raise ValidationError(
                f"executor {self.executor!r} has no command to run; it is performed by hand",
                object=self.label,
                field="executor",
            )
        prereqs = [d.prereq_command for d in self.dependencies]
        texts: list[str | None] = [self.command, self.cleanup_command, *prereqs]
        values = resolve_arguments(self.label, self.input_arguments, texts, args)
        return RenderedCommand(
            procedure=self.label,
            executor=self.executor,
            command=fill(self.command, values),
            cleanup_command=fill(self.cleanup_command, values),
            arguments=values,
            prereq_commands=[p for p in (fill(t, values) for t in prereqs) if p],
        )


@dataclass(frozen=True, slots=True)
class CtidExecutor:
    """One entry of a CTID step's atomic-style ``executors`` list."""

    name: str
    command: str | None
    cleanup_command: str | None = None
    elevation_required: bool = False


@dataclass(frozen=True, slots=True)
class CtidStep:
    id: str
    name: str
    description: str
    tactic: str
    technique_id: str
    technique_name: str
    procedure_step: str
    platforms: dict[str, dict[str, str]]  # platform (ATT&CK spelling) → executor → command
    input_arguments: dict[str, InputArgument]
    cleanup: dict[str, dict[str, str]] = field(default_factory=dict)
    payloads: list[str] = field(default_factory=list)
    executors: list[CtidExecutor] = field(default_factory=list)
    dependencies: list[Dependency] = field(default_factory=list)
    dependency_executor_name: str | None = None
    procedure_group: str | None = None
    cti_source: str | None = None

    @property
    def label(self) -> str:
        return f"CTID step {self.procedure_step} '{self.name}' ({self.id})"

    @property
    def is_technique(self) -> bool:
        """False for setup steps whose technique is a placeholder (the Turla plans use ``x``)."""
        return bool(TECHNIQUE_ID.match(self.technique_id))

    def choose(
        self, platforms: Sequence[str], allowed_executors: Iterable[str]
    ) -> tuple[str | None, str | None, str | None, str | None]:
        """(platform, executor, command, cleanup) for the first of ``platforms`` the step supports,
        preferring an executor the rules of engagement allow; all None when no platform fits.
        One rule for the planning flow and for importing a plan into an existing DCO."""
        platform = next((p for p in platforms if p in self.platforms), None)
        if platform is None:
            return None, None, None, None
        executors = self.platforms[platform]
        allowed = {e.lower() for e in allowed_executors}
        executor = next((e for e in executors if e in allowed), next(iter(executors), None))
        if executor is None:
            return platform, None, None, None
        return platform, executor, executors[executor], self.cleanup.get(platform, {}).get(executor)

    def render(self, platform: str, executor: str, args: Mapping[str, Any] | None = None) -> RenderedCommand:
        plat = normalise_platform(platform)
        commands = self.platforms.get(plat)
        if not commands or executor not in commands:
            offered = [f"{p}/{e}" for p, ex in self.platforms.items() for e in ex]
            raise ValidationError(
                f"no {plat}/{executor} command", object=self.label, field="executor", suggestions=offered
            )
        command = commands[executor]
        cleanup = self.cleanup.get(plat, {}).get(executor)
        values = resolve_arguments(self.label, self.input_arguments, [command, cleanup], args)
        return RenderedCommand(
            procedure=self.label,
            executor=executor,
            command=fill(command, values),
            cleanup_command=fill(cleanup, values),
            arguments=values,
        )


@dataclass(frozen=True, slots=True)
class CtidPlan:
    adversary_name: str
    attack_version: str
    format_version: str
    steps: list[CtidStep]
    id: str | None = None
    adversary_description: str | None = None
    source: str | None = None
    warnings: list[str] = field(default_factory=list)

    def technique_ids(self) -> set[str]:
        return {s.technique_id for s in self.steps if s.is_technique}
