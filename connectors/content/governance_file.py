"""Read the governance file (``DCO_GOVERNANCE_FILE``, else the default shipped beside
``dcoflow.models.governance``) into a validated ``Governance``.

Errors name the file and the field (dotted path, list indexes in brackets), because the file is
written by hand. A file is read once per change (cached by path and modification time).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError as PydanticValidationError

from dcoflow.connectors.content.operation_file import _field_path
from dcoflow.core.errors import ContentError, ValidationError
from dcoflow.models.governance import Governance

DEFAULT_NAME = "governance.yaml"
_CACHE: dict[tuple[str, int], Governance] = {}


def default_governance_path() -> Path:
    return Path(str(resources.files("dcoflow.models").joinpath(DEFAULT_NAME)))


def governance_path() -> Path:
    """``DCO_GOVERNANCE_FILE``, else the shipped default (an edge that holds the file passes it to load_governance)."""
    from dcoflow.connectors.registry import configured

    chosen = configured().governance_file
    return chosen if chosen is not None else default_governance_path()


def governance_from_data(data: object, source: str) -> Governance:
    if not isinstance(data, dict):
        raise ValidationError("a governance file must be a mapping (organisations, decision_bodies, raci, …)",
                              object=source)
    try:
        return Governance.model_validate(data)
    except PydanticValidationError as exc:
        errors = exc.errors()
        field = _field_path(tuple(errors[0]["loc"]))
        reasons = "; ".join(f"{_field_path(tuple(e['loc'])) or '(top)'}: {e['msg']}" for e in errors[:5])
        raise ValidationError(
            f"invalid governance file: {reasons}", object=source, field=field or None,
            details={"errors": [{"field": _field_path(tuple(e["loc"])), "reason": e["msg"]} for e in errors]},
        ) from exc


def load_governance(path: str | Path | None = None) -> Governance:
    """The governance in ``path`` (else the configured or default file)."""
    path = Path(path) if path is not None else governance_path()
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError as exc:
        raise ContentError("governance file not found", object=str(path),
                           hint="fix DCO_GOVERNANCE_FILE or unset it to use the default") from exc
    cached = _CACHE.get((str(path), stamp))
    if cached is not None:
        return cached
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentError(f"cannot read governance file: {exc}", object=str(path)) from exc
    except yaml.YAMLError as exc:
        raise ContentError(f"not valid YAML: {exc}", object=str(path)) from exc
    governance = governance_from_data(data, str(path))
    _CACHE[(str(path), stamp)] = governance
    return governance
