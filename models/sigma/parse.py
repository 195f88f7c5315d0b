"""Sigma rule text → a pySigma rule and its condition tree (the first step of ``dcoflow.models.sigma.compiler``).

:class:`RuleCompileError` is the one error every step raises: its message is the reason an analyst sees for a
skipped rule.
"""

from __future__ import annotations

from typing import Any

import yaml
from sigma.conditions import ConditionOR
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from dcoflow.models.strict_yaml import load_yaml, yaml_problem

# Modifier spellings of the Sigma specification that pySigma 1.5 names differently.
_MODIFIER_ALIASES = {"utf16le": "wide"}


class RuleCompileError(ValueError):
    """A rule cannot be evaluated locally; the message is the reason shown to the analyst."""


def _alias_modifiers(detection: Any) -> Any:
    if isinstance(detection, dict):
        out: dict[Any, Any] = {}
        for key, value in detection.items():
            new_key = key
            if isinstance(key, str) and "|" in key:
                name, *mods = key.split("|")
                new_key = "|".join([name, *(_MODIFIER_ALIASES.get(m, m) for m in mods)])
            out[new_key] = _alias_modifiers(value)
        return out
    if isinstance(detection, list):
        return [_alias_modifiers(v) for v in detection]
    return detection


def parse_rule(text: str) -> SigmaRule:
    """A fresh pySigma rule from YAML text (pySigma mutates rules when converting: never share them)."""
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        raise RuleCompileError(f"invalid YAML: {yaml_problem(exc)}") from exc
    if not isinstance(doc, dict) or "detection" not in doc:
        raise RuleCompileError("not a Sigma rule (no detection section)")
    doc = dict(doc)
    doc["detection"] = _alias_modifiers(doc["detection"])
    try:
        return SigmaRule.from_dict(doc)
    except SigmaError as exc:
        raise RuleCompileError(f"pySigma: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise RuleCompileError(f"pySigma could not parse the rule: {type(exc).__name__}: {exc}") from exc


def condition_tree(rule: SigmaRule) -> Any:
    """The rule's conditions as one pySigma condition tree (several conditions are OR-ed)."""
    try:
        trees = [cond.parse() for cond in rule.detection.parsed_condition]
    except SigmaError as exc:
        raise RuleCompileError(f"condition: {exc}") from exc
    if not trees:
        raise RuleCompileError("rule has no condition")
    return trees[0] if len(trees) == 1 else ConditionOR(trees)
