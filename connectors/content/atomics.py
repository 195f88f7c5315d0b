"""Reading Atomic Red Team: every ``atomics/T*/T*.yaml`` of a checkout into an index by
technique, platform and GUID.

libyaml (``CSafeLoader``) reads the 341 technique files of the upstream corpus in about
0.2 s; the index is kept per process by path, so planning and conduct share one load.
Files or tests that cannot be read are skipped and listed in ``AtomicsIndex.report``.
Technique ids are kept as the atomics write them (upper-cased): the atomics already use
ATT&CK v19 ids that an older catalog may not know, and the catalog decides about those.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dcoflow.core.errors import BatchReport, ContentError, NotFoundError
from dcoflow.models.procedures import AtomicTest, Dependency, InputArgument, normalise_platform
from dcoflow.models.strict_yaml import load_yaml

_lock = threading.Lock()
_memo: dict[str, AtomicsIndex] = {}


@dataclass(slots=True)
class AtomicsIndex:
    root: Path
    tests: list[AtomicTest]
    report: BatchReport
    _by_technique: dict[str, list[AtomicTest]] = field(default_factory=dict, repr=False)
    _by_guid: dict[str, AtomicTest] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for t in self.tests:
            self._by_technique.setdefault(t.technique_id, []).append(t)
            self._by_guid[t.guid] = t

    def technique_ids(self) -> set[str]:
        return set(self._by_technique)

    def for_technique(
        self,
        technique_id: str,
        platforms: Iterable[str] | None = None,
        *,
        include_subtechniques: bool = False,
    ) -> list[AtomicTest]:
        """The tests of one technique, in file order, for any of ``platforms`` (all when None).

        Platform names as ATT&CK and the atomics write them (windows, linux, macos, …), any case.
        """
        tid = technique_id.strip().upper()
        found = list(self._by_technique.get(tid, []))
        if include_subtechniques and "." not in tid:
            for key in sorted(k for k in self._by_technique if k.startswith(tid + ".")):
                found.extend(self._by_technique[key])
        if platforms is None:
            return found
        wanted = {normalise_platform(p) for p in platforms}
        return [t for t in found if any(normalise_platform(p) in wanted for p in t.platforms)]

    def get(self, guid: str) -> AtomicTest:
        test = self._by_guid.get(guid.strip().lower())
        if test is None:
            raise NotFoundError("no atomic test with this GUID", system="atomics", object=guid)
        return test

    def __len__(self) -> int:
        return len(self.tests)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _arguments(raw: Any) -> dict[str, InputArgument]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("'input_arguments' is not a mapping")
    out: dict[str, InputArgument] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise ValueError(f"input argument {name!r} is not a mapping")
        out[str(name)] = InputArgument.from_spec(spec)
    return out


def _dependencies(raw: Any) -> list[Dependency]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("'dependencies' is not a list")
    out: list[Dependency] = []
    for i, dep in enumerate(raw):
        if not isinstance(dep, dict):
            raise ValueError(f"dependency {i} is not a mapping")
        out.append(
            Dependency(
                description=str(dep.get("description") or "").strip(),
                prereq_command=str(dep.get("prereq_command") or ""),
                get_prereq_command=str(dep.get("get_prereq_command") or ""),
            )
        )
    return out


def parse_atomic_test(raw: Any, technique_id: str, where: str) -> AtomicTest:
    """One entry of ``atomic_tests``; raises ValueError saying what is wrong with it."""
    if not isinstance(raw, dict):
        raise ValueError("test is not a mapping")
    guid = raw.get("auto_generated_guid")
    if not isinstance(guid, str) or not guid.strip():
        raise ValueError("test has no 'auto_generated_guid'")
    executor = raw.get("executor")
    if not isinstance(executor, dict) or not executor.get("name"):
        raise ValueError("test has no executor name")
    platforms = raw.get("supported_platforms")
    if not isinstance(platforms, list) or not platforms:
        raise ValueError("test has no 'supported_platforms'")
    name = str(executor["name"]).strip().lower()
    command = _text(executor.get("command"))
    steps = _text(executor.get("steps"))
    if command is None and steps is None:
        raise ValueError(f"executor {name!r} has neither 'command' nor 'steps'")
    return AtomicTest(
        guid=guid.strip().lower(),
        technique_id=technique_id,
        name=str(raw.get("name") or "").strip(),
        description=str(raw.get("description") or "").strip(),
        platforms=[str(p).strip().lower() for p in platforms],
        executor=name,
        command=command,
        cleanup_command=_text(executor.get("cleanup_command")),
        elevation_required=bool(executor.get("elevation_required", False)),
        input_arguments=_arguments(raw.get("input_arguments")),
        dependencies=_dependencies(raw.get("dependencies")),
        dependency_executor_name=_text(raw.get("dependency_executor_name")),
        manual_steps=steps,
        source=where,
    )


def _technique_dir(path: Path) -> Path:
    """Accept the checkout root (``…/atomics``) or its inner ``atomics`` folder."""
    inner = path / "atomics"
    return inner if inner.is_dir() and any(inner.glob("T*")) else path


def read_atomics(path: Path) -> AtomicsIndex:
    """Parse a checkout without the per-process memo."""
    if not path.is_dir():
        raise ContentError("atomics folder does not exist", system="atomics", object=str(path))
    folder = _technique_dir(path)
    report = BatchReport(source=f"atomics {folder}")
    tests: list[AtomicTest] = []
    seen: dict[str, str] = {}
    for file in sorted(folder.glob("T*/T*.yaml")):
        rel = f"{file.parent.name}/{file.name}"
        try:
            with file.open("rb") as fh:
                doc = load_yaml(fh)
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
            report.read += 1
            report.skip(rel, f"unreadable YAML: {str(exc).splitlines()[0]}")
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("atomic_tests"), list):
            report.read += 1
            report.skip(rel, "no 'atomic_tests' list")
            continue
        technique_id = str(doc.get("attack_technique") or file.stem).strip().upper()
        for i, raw in enumerate(doc["atomic_tests"]):
            report.read += 1
            where = f"{rel}#{i + 1}"
            try:
                test = parse_atomic_test(raw, technique_id, where)
            except ValueError as exc:
                report.skip(where, str(exc))
                continue
            if test.guid in seen:
                report.skip(where, f"duplicate GUID {test.guid} (first in {seen[test.guid]})")
                continue
            seen[test.guid] = where
            tests.append(test)
            report.kept += 1
    if report.read == 0:
        raise ContentError(
            "no atomic technique files (T*/T*.yaml) found", system="atomics", object=str(folder),
            hint="point DCO_ATOMICS_DIR at an Atomic Red Team checkout",
        )
    return AtomicsIndex(root=folder, tests=tests, report=report)


def load_atomics(path: Path) -> AtomicsIndex:
    """The index of an Atomic Red Team checkout, read once per process per path."""
    key = str(path.resolve())
    with _lock:
        index = _memo.get(key)
        if index is None:
            index = read_atomics(path)
            _memo[key] = index
        return index
