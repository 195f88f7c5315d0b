"""The conduct gate: whether a DCO may act on real systems now, as one pure rule.

Conducting means running something against hosts or monitoring systems on the DCO's behalf:
executing an emulation step (local lab host, Caldera), hunting a SIEM or telemetry with the
results recorded as the DCO's evidence. It needs an approval (state ``approved`` or
``conducting``; a re-test loops back to ``conducting`` through the state machine) and, when the
DCO has a time window, ``now`` inside it. Planning, dry runs, assessment and reporting are not
conduct and run in any state. Callers pass what they read; nothing here touches the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from dcoflow.core.errors import GateError, ValidationError
from dcoflow.models.operation import DcoState, Window, as_utc

CONDUCT_STATES = frozenset({DcoState.APPROVED, DcoState.CONDUCTING})

_WHAT_ALLOWS: dict[DcoState, str] = {
    DcoState.DRAFT: "plan it (`dco plan`) and have it approved (`dco ops approve DCO --by NAME`)",
    DcoState.PLANNED: "have it approved (`dco ops approve DCO --by NAME`)",
    DcoState.ASSESSING: "move it back to conducting for a re-test (`dco ops move DCO conducting --by NAME`)",
    DcoState.FOLLOW_UP: "move it back to conducting for a re-test (`dco ops move DCO conducting --by NAME`)",
    DcoState.CLOSED: "nothing: a closed DCO never conducts again; create a new DCO",
}


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """``allowed``, or the reason it is not and what would allow it."""

    allowed: bool
    reason: str = ""
    hint: str = ""


def conduct_verdict(state: DcoState, window: Window | None, now: datetime) -> GateVerdict:
    """May a DCO in ``state`` with ``window`` conduct at ``now``?"""
    if state not in CONDUCT_STATES:
        return GateVerdict(False, f"the DCO is {state.value}, not approved for conduct", _WHAT_ALLOWS[state])
    if window is not None:
        moment, start, end = as_utc(now), as_utc(window.start), as_utc(window.end)
        if moment < start:
            return GateVerdict(False, f"its window opens at {start.isoformat()} (now {moment.isoformat()})",
                               "wait for the window, or re-plan the window and have it approved again")
        if moment > end:
            return GateVerdict(False, f"its window closed at {end.isoformat()} (now {moment.isoformat()})",
                               "re-plan a new window and have it approved again, or create a new DCO")
    return GateVerdict(True)


def require_conduct(dco_id: str, state: DcoState, window: Window | None, now: datetime, action: str) -> None:
    """Raise GateError naming the DCO, its state and what would allow ``action`` unless it may conduct now."""
    verdict = conduct_verdict(state, window, now)
    if not verdict.allowed:
        raise GateError(f"{action} refused: {verdict.reason}", object=f"DCO {dco_id} (state {state.value})",
                        hint=verdict.hint.replace("DCO", dco_id),
                        details={"dco": dco_id, "state": state.value, "action": action})


def require_approver(approver: str | None) -> str:
    """An approval names who approved it: a blank approver is refused, never recorded as someone."""
    name = (approver or "").strip()
    if not name:
        raise ValidationError("an approval needs the approver's name", field="approver",
                              hint="give the approver's name and organisation, e.g. 'J. Smith (OCIO)'")
    return name


def _short_host(name: str) -> str:
    return name.strip().lower().split(".", 1)[0]


def overlapping_hosts(a_hosts: Iterable[str], b_hosts: Iterable[str]) -> list[str]:
    """Hosts two DCOs share (short, case-insensitive names; ``localhost`` is a host like any other)."""
    b = {_short_host(h) for h in b_hosts if h.strip()}
    return sorted({h for h in (_short_host(x) for x in a_hosts if x.strip()) if h in b})


def windows_overlap(a: Window | None, b: Window | None) -> bool:
    """Two live windows overlap (a DCO without a window is open-ended, so it overlaps any)."""
    if a is None or b is None:
        return True
    return as_utc(a.start) < as_utc(b.end) and as_utc(b.start) < as_utc(a.end)
