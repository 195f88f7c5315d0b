"""How one Sigma value matches a field: wildcard patterns sorted into fast kinds (eq, contains, startswith,
endswith), regular expressions run by RE2 in linear time, CIDR and numeric comparisons. The code generator
(``dcoflow.models.sigma.codegen``) turns these into the expressions of a group function.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships no type stubs
from sigma.types import CompareOperators, SigmaString, SpecialChars

from dcoflow.models.sigma.parse import RuleCompileError


def pattern_parts(value: SigmaString) -> list[str | SpecialChars]:
    if value.contains_placeholder():
        names = sorted({getattr(p, "name", "?") for p in value.s if not isinstance(p, str | SpecialChars)})
        raise RuleCompileError("unexpanded placeholder " + ", ".join(f"%{n}%" for n in names)
                               + " (expand it with a pipeline or pass an expanded rule)")
    parts: list[str | SpecialChars] = []
    for p in value.s:
        if isinstance(p, str) and parts and isinstance(parts[-1], str):
            parts[-1] = parts[-1] + p
        elif isinstance(p, str | SpecialChars):
            parts.append(p)
    return parts


def classify(parts: list[str | SpecialChars]) -> tuple[str, str] | None:
    """Fast-path kind of a wildcard pattern: eq / contains / startswith / endswith / any, else None."""
    star = SpecialChars.WILDCARD_MULTI
    if not parts:
        return ("eq", "")
    if all(isinstance(p, str) for p in parts):
        return ("eq", "".join(p for p in parts if isinstance(p, str)))
    if parts == [star]:
        return ("any", "")
    first, last = parts[0], parts[-1]
    if len(parts) == 3 and first == star and last == star and isinstance(parts[1], str):
        return ("contains", parts[1])
    if len(parts) == 2 and isinstance(first, str) and last == star:
        return ("startswith", first)
    if len(parts) == 2 and first == star and isinstance(last, str):
        return ("endswith", last)
    return None


def wildcard_regex(parts: list[str | SpecialChars], *, lower: bool) -> str:
    out = []
    for p in parts:
        if p == SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif p == SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        elif isinstance(p, str):
            out.append(re.escape(p.lower() if lower else p))
    return "".join(out)


# RE2 (linear time, no backtracking) runs every pattern a rule brings: a ``|re`` such as ``(a+)+$``
# would otherwise hold Python's backtracking engine for hours on one 40k-character field.
_RE2_FLAGS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))


def linear_regex(pattern: str, flags: int = 0) -> Any:
    """``pattern`` compiled by RE2 (``search``/``fullmatch`` like ``re``); RuleCompileError when RE2
    cannot take it — a backreference or lookaround, which only a backtracking engine can run."""
    inline = "".join(c for f, c in _RE2_FLAGS if flags & f)
    try:
        return re2.compile(f"(?{inline}){pattern}" if inline else pattern)
    except re2.error as exc:
        try:
            re.compile(pattern, flags)
        except re.error as bad:
            raise RuleCompileError(f"regular expression {pattern!r} does not compile: {bad}") from bad
        raise RuleCompileError(
            f"regular expression {pattern!r} needs backtracking (backreference or lookaround), which can take "
            f"exponential time on long fields; not run ({exc})") from exc


def required_literal(rx: re.Pattern[str]) -> str | None:
    """A text every match of a case-sensitive pattern contains: its longest run of plain characters at
    the top level (a concatenation, so each of its items is matched once). ``'lit' in text`` then
    rejects most events before the regex engine runs (ContextInfo texts are kilobytes long)."""
    if rx.flags & re.IGNORECASE:
        return None
    try:  # the private parser is the only exact reading of a pattern; any surprise means no prefilter
        items = list(importlib.import_module("re._parser").parse(rx.pattern, rx.flags))
    except Exception:
        return None
    best, run = "", []
    for op, arg in [*items, (None, None)]:
        if str(op) == "LITERAL":
            run.append(chr(arg))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    return best or None


@lru_cache(maxsize=65536)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None


def cidr_test(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Callable[[str], bool]:
    def test(value: str) -> bool:
        addr = _ip(value)
        return addr is not None and addr.version == network.version and addr in network
    return test


def _number(text: str) -> float | None:
    try:
        return float(int(text, 0)) if text[:2].lower() == "0x" else float(text)
    except ValueError:
        return None


def compare_test(op: CompareOperators, bound: float) -> Callable[[str], bool]:
    ops: dict[CompareOperators, Callable[[float], bool]] = {
        CompareOperators.LT: lambda x: x < bound,
        CompareOperators.LTE: lambda x: x <= bound,
        CompareOperators.GT: lambda x: x > bound,
        CompareOperators.GTE: lambda x: x >= bound,
    }
    cmp = ops[op]

    def test(value: str) -> bool:
        n = _number(value)
        return n is not None and cmp(n)
    return test
