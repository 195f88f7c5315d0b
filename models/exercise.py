"""Exercise separation: whether a hunted event is the activity of an exercise rather than a real finding.

Pure rules over one event and the markers of the exercises that may have caused it: the DCO's own marker
string (``DCO-<dco_id>``, which its emulation puts in its commands), the windows of its recorded emulation
steps (on the step's host), and other DCOs' acknowledged live windows (deconfliction). The hunt recorder
reads the markers from the store once per hunt and asks these per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dcoflow.models.operation import as_utc
from dcoflow.models.stix import hunt_objects as ho


@dataclass(frozen=True, slots=True)
class DeconflictedWindow:
    """Another DCO's acknowledged live window: its hits (on its hosts, in its window, with its marker)
    are exercise activity."""

    dco_id: str
    marker: str
    hosts: tuple[str, ...]
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class ExerciseWindow:
    """When (and optionally where) one emulation step ran; events inside it are exercise activity."""

    start: datetime
    end: datetime
    host: str | None = None
    step_id: str | None = None


ExerciseMarker = str | ExerciseWindow | DeconflictedWindow


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _short_host(name: str) -> str:
    return name.lower().split(".", 1)[0]


def exercise_of(event: Mapping[str, Any], markers: Sequence[ExerciseMarker]) -> str | None:
    """The other DCO whose acknowledged live window holds the event: on one of its hosts, inside its
    window, carrying its marker. None when no deconflicted window matches."""
    windows = [m for m in markers if isinstance(m, DeconflictedWindow)]
    if not windows:
        return None
    texts = [t.lower() for t in _strings(event)]
    view = ho.EventView.of(event)
    moment = ho.event_time(view)
    host = ho.event_host(view)
    for w in windows:
        if not any(w.marker.lower() in t for t in texts):
            continue
        if w.hosts and (host is None or _short_host(host) not in {_short_host(h) for h in w.hosts}):
            continue
        if (w.start is not None or w.end is not None) and moment is None:
            continue
        if moment is not None and ((w.start is not None and moment < as_utc(w.start))
                                   or (w.end is not None and moment > as_utc(w.end))):
            continue
        return w.dco_id
    return None


def is_exercise(event: Mapping[str, Any], markers: Sequence[ExerciseMarker]) -> bool:
    """Whether an event is exercise activity: it carries the DCO's own marker string (case-insensitive,
    anywhere in its values), falls inside one of its step windows (on the step's host when it names
    one), or lies in another DCO's acknowledged live window (``exercise_of``)."""
    if not markers:
        return False
    if exercise_of(event, markers) is not None:
        return True
    tags = [m.lower() for m in markers if isinstance(m, str) and m]
    if tags and any(tag in text.lower() for text in _strings(event) for tag in tags):
        return True
    windows = [m for m in markers if isinstance(m, ExerciseWindow)]
    if not windows:
        return False
    view = ho.EventView.of(event)
    moment = ho.event_time(view)
    if moment is None:
        return False
    host = ho.event_host(view)
    for w in windows:
        start, end = as_utc(w.start), as_utc(w.end)
        on_host = w.host is None or (host is not None and _short_host(w.host) == _short_host(host))
        if on_host and start <= moment <= end:
            return True
    return False
