"""Reading CTID adversary emulation plans (YAML format 1.0, see the emulation library's
``structure/format_dictionary.yaml``): a list whose first entry is ``emulation_plan_details``
and whose other entries are procedures.

A plan that is not YAML, or an entry whose shape the format does not allow, raises a
ContentError naming the file and the entry. Steps whose technique is not an ATT&CK id (the
Turla plans use ``x`` for operator setup steps) are kept and listed in ``CtidPlan.warnings``;
whether an id exists in the loaded ATT&CK release is the catalog's call, not the reader's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dcoflow.core.errors import ContentError
from dcoflow.models.procedures import (
    TECHNIQUE_ID,
    CtidExecutor,
    CtidPlan,
    CtidStep,
    Dependency,
    InputArgument,
    normalise_platform,
)
from dcoflow.models.strict_yaml import load_yaml, yaml_problem

SUPPORTED_FORMATS = ("1.0",)


def _err(path: Path, entry: str, reason: str) -> ContentError:
    return ContentError(reason, system="ctid", object=f"{path} entry {entry}")


def _mapping(value: Any, path: Path, entry: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err(path, entry, f"'{what}' is not a mapping (got {type(value).__name__})")
    return value


def _version(value: Any) -> str:
    # YAML reads 8.1 and 1.0 as floats and 13 as an int.
    return "" if value is None else str(value)


def _arguments(raw: Any, path: Path, entry: str) -> dict[str, InputArgument]:
    out: dict[str, InputArgument] = {}
    for name, raw_spec in _mapping(raw, path, entry, "input_arguments").items():
        spec = _mapping(raw_spec, path, entry, f"input_arguments.{name}")
        out[str(name)] = InputArgument.from_spec(spec)
    return out


def _step(raw: Any, path: Path, index: int) -> tuple[CtidStep, str | None]:
    entry = f"#{index}"
    if not isinstance(raw, dict):
        raise _err(path, entry, f"procedure is not a mapping (got {type(raw).__name__})")
    entry = f"#{index} ({raw.get('procedure_step', '?')} {raw.get('name', '?')})"
    for key in ("id", "name", "technique", "platforms"):
        if raw.get(key) is None:
            raise _err(path, entry, f"procedure has no '{key}'")
    technique = _mapping(raw["technique"], path, entry, "technique")
    if not technique.get("attack_id"):
        raise _err(path, entry, "technique has no 'attack_id'")
    technique_id = str(technique["attack_id"]).strip()
    if TECHNIQUE_ID.match(technique_id.upper()):
        technique_id = technique_id.upper()

    platforms: dict[str, dict[str, str]] = {}
    cleanup: dict[str, dict[str, str]] = {}
    payloads: list[str] = []
    for platform, by_executor in _mapping(raw["platforms"], path, entry, "platforms").items():
        plat = normalise_platform(str(platform))
        for names, raw_body in _mapping(by_executor, path, entry, f"platforms.{platform}").items():
            body = _mapping(raw_body, path, entry, f"platforms.{platform}.{names}")
            if body.get("command") is None:
                raise _err(path, entry, f"platforms.{platform}.{names} has no 'command'")
            # "psh,pwsh" means the same command for either executor.
            for name in (n.strip() for n in str(names).split(",") if n.strip()):
                platforms.setdefault(plat, {})[name] = str(body["command"])
                if body.get("cleanup") is not None:
                    cleanup.setdefault(plat, {})[name] = str(body["cleanup"])
            for p in body.get("payloads") or []:
                if str(p) not in payloads:
                    payloads.append(str(p))

    executors: list[CtidExecutor] = []
    raw_execs = raw.get("executors") or []
    if not isinstance(raw_execs, list):
        raise _err(path, entry, "'executors' is not a list")
    for i, raw_ex in enumerate(raw_execs):
        ex = _mapping(raw_ex, path, entry, f"executors[{i}]")
        if not ex.get("name"):
            raise _err(path, entry, f"executors[{i}] has no 'name'")
        executors.append(
            CtidExecutor(
                name=str(ex["name"]).strip().lower(),
                command=None if ex.get("command") is None else str(ex["command"]),
                cleanup_command=None if ex.get("cleanup_command") is None else str(ex["cleanup_command"]),
                elevation_required=bool(ex.get("elevation_required", False)),
            )
        )

    deps_raw = raw.get("dependencies") or []
    if not isinstance(deps_raw, list):
        raise _err(path, entry, "'dependencies' is not a list")
    dependencies = [
        Dependency(
            description=str(d.get("description") or "").strip(),
            prereq_command=str(d.get("prereq_command") or ""),
            get_prereq_command=str(d.get("get_prereq_command") or ""),
        )
        for d in (_mapping(d, path, entry, "dependencies[]") for d in deps_raw)
    ]

    step = CtidStep(
        id=str(raw["id"]).strip(),
        name=str(raw["name"]).strip(),
        description=str(raw.get("description") or "").strip(),
        tactic=str(raw.get("tactic") or "").strip(),
        technique_id=technique_id,
        technique_name=str(technique.get("name") or "").strip(),
        procedure_step=str(raw.get("procedure_step") or "").strip(),
        platforms=platforms,
        input_arguments=_arguments(raw.get("input_arguments"), path, entry),
        cleanup=cleanup,
        payloads=payloads,
        executors=executors,
        dependencies=dependencies,
        dependency_executor_name=None if raw.get("dependency_executor_name") is None
        else str(raw["dependency_executor_name"]),
        procedure_group=None if raw.get("procedure_group") is None else str(raw["procedure_group"]),
        cti_source=None if raw.get("cti_source") is None else str(raw["cti_source"]),
    )
    warning = None
    if not step.is_technique:
        warning = f"{entry}: technique {technique_id!r} is not an ATT&CK technique id (kept as a setup step)"
    return step, warning


def parse_ctid_plan(doc: Any, path: Path) -> CtidPlan:
    if not isinstance(doc, list) or not doc:
        raise _err(path, "#0", "an emulation plan is a non-empty YAML list")
    head = doc[0]
    if not isinstance(head, dict) or not isinstance(head.get("emulation_plan_details"), dict):
        raise _err(path, "#0", "the first entry must be 'emulation_plan_details'")
    details = head["emulation_plan_details"]
    fmt = _version(details.get("format_version"))
    if fmt not in SUPPORTED_FORMATS:
        raise _err(path, "#0", f"format_version {fmt or 'missing'} is not supported (supported: 1.0)")
    if not details.get("adversary_name"):
        raise _err(path, "#0", "emulation_plan_details has no 'adversary_name'")
    steps: list[CtidStep] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(doc[1:], start=1):
        step, warning = _step(raw, path, index)
        if step.id in seen:
            raise _err(path, f"#{index}", f"duplicate procedure id {step.id}")
        seen.add(step.id)
        steps.append(step)
        if warning:
            warnings.append(warning)
    return CtidPlan(
        adversary_name=str(details["adversary_name"]).strip(),
        attack_version=_version(details.get("attack_version")),
        format_version=fmt,
        steps=steps,
        id=None if details.get("id") is None else str(details["id"]),
        adversary_description=None if details.get("adversary_description") is None
        else str(details["adversary_description"]).strip(),
        source=str(path),
        warnings=warnings,
    )


def load_ctid_plan(path: Path | str) -> CtidPlan:
    """Read one CTID emulation plan YAML file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            doc = load_yaml(fh)
    except OSError as exc:
        raise ContentError(f"cannot read the plan: {exc.strerror}", system="ctid", object=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ContentError(f"not UTF-8 text (byte {exc.start})", system="ctid", object=str(path)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise _err(path, where, f"not valid YAML: {yaml_problem(exc)}") from exc
    return parse_ctid_plan(doc, path)
