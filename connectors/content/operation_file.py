"""Read a DCO description from a YAML or JSON file into a validated ``DcoSpec``.

Every error names the file, the field (dotted path, list indexes in brackets) and what
would be valid, because coordinators write these files by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from dcoflow.core.errors import ContentError, ValidationError
from dcoflow.models.operation import DcoSpec


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def spec_from_data(data: Any, source: str) -> DcoSpec:
    """Validate a parsed mapping; raises ValidationError naming ``source`` and the first bad field."""
    if not isinstance(data, dict):
        raise ValidationError("an operation must be a mapping of fields (name, objective, type, …)", object=source)
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
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ContentError("operation file not found", object=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentError(f"cannot read operation file: {exc}", object=str(path)) from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise ContentError(f"not valid {kind}: {exc}", object=str(path)) from exc
    return spec_from_data(data, str(path))
