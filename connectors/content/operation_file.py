"""Read a DCO description from a YAML or JSON file into a validated ``DcoSpec``.

Every error names the file, the field (dotted path, list indexes in brackets) and what
would be valid, because coordinators write these files by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from dcoflow.core.errors import ContentError, ValidationError
from dcoflow.models.operation import DcoSpec
from dcoflow.models.strict_yaml import load_json, load_yaml, yaml_problem


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nul_field(data: Any, loc: tuple[int | str, ...] = ()) -> str | None:
    """The dotted path of the first key or string value holding a NUL character."""
    if isinstance(data, str):
        return (_field_path(loc) or "(top)") if "\x00" in data else None
    items: list[tuple[Any, Any]] = (
        list(data.items()) if isinstance(data, dict) else list(enumerate(data)) if isinstance(data, list) else []
    )
    for key, value in items:
        where = (*loc, key if isinstance(key, int) else str(key))
        if isinstance(key, str) and "\x00" in key:
            return _field_path(where)
        found = _nul_field(value, where)
        if found is not None:
            return found
    return None


def spec_from_data(data: Any, source: str) -> DcoSpec:
    """Validate a parsed mapping; raises ValidationError naming ``source`` and the first bad field."""
    if not isinstance(data, dict):
        raise ValidationError("an operation must be a mapping of fields (name, objective, type, …)", object=source)
    nul = _nul_field(data)
    if nul is not None:  # PostgreSQL text cannot hold NUL, and no name or objective needs one
        raise ValidationError("contains a NUL character", object=source, field=nul)
    try:
        return DcoSpec.model_validate(data)
    except PydanticValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        field = _field_path(tuple(first["loc"]))
        # pydantic's messages already list the valid values of enum fields.
        reasons = "; ".join(
            e["msg"] if i == 0 else f"{_field_path(tuple(e['loc'])) or '(top)'}: {e['msg']}"
            for i, e in enumerate(errors[:5])
        )
        raise ValidationError(
            reasons,
            object=source,
            field=field or None,
            details={"errors": [{"field": _field_path(tuple(e["loc"])), "reason": e["msg"]} for e in errors]},
        ) from exc


def load_operation_file(path: str | Path) -> DcoSpec:
    return spec_from_data(read_operation_data(path), str(path))


def read_operation_data(path: str | Path) -> Any:
    """The operation file's parsed YAML/JSON, not yet validated (``--from-stix`` adds to its threat profile)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ContentError("operation file not found", object=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ContentError(f"not UTF-8 text (byte {exc.start}: {exc.reason})", object=str(path)) from exc
    except OSError as exc:
        raise ContentError(f"cannot read operation file: {exc.strerror or exc}", object=str(path)) from exc
    try:
        data = load_json(text) if path.suffix.lower() == ".json" else load_yaml(text)
    except yaml.YAMLError as exc:
        raise ContentError(f"not valid YAML: {yaml_problem(exc)}", object=str(path)) from exc
    except ValueError as exc:
        raise ContentError(f"not valid JSON: {exc}", object=str(path)) from exc
    return data
