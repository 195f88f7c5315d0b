"""Group functions: the emitted expressions of every rule that can see one (channel, event id), generated and
compiled into one Python function (``build_group``), split by anchor base name for the large process-creation
groups; long texts are scanned for ``contains`` words by Aho-Corasick with a per-line cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

import ahocorasick  # type: ignore[import-not-found]  # pyahocorasick ships no type stubs

from dcoflow.models.sigma.codegen import RuleCode

GroupFn = Callable[[dict[str, Any]], list[int]]


def tostr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        import orjson
        return orjson.dumps(value).decode()
    return str(value)


_LINE_SCAN_MIN = 256  # shorter texts are scanned whole
_LINE_CACHE_CHARS = 4 << 20  # per field of a group; the cache is emptied when it holds more


def _scanner(words: Iterable[str]) -> Callable[[str], set[str]]:
    """The set of ``words`` occurring in a (lower-case) text, by one Aho-Corasick pass.

    Long texts (PowerShell ContextInfo, Payload, script blocks) repeat most of their lines from
    event to event, so when no word spans a line break the text is scanned line by line with
    each line's result cached: the union over the lines is exactly the whole-text result.
    """
    automaton = ahocorasick.Automaton()
    ws = sorted(set(words))
    for word in ws:
        automaton.add_word(word, word)
    automaton.make_automaton()
    scan_iter = automaton.iter
    second = itemgetter(1)

    def scan(text: str) -> set[str]:
        return set(map(second, scan_iter(text)))

    if any("\n" in w for w in ws):
        return scan
    cache: dict[str, frozenset[str]] = {}
    held = 0

    def scan_lines(text: str) -> set[str]:
        nonlocal held
        if len(text) < _LINE_SCAN_MIN:
            return set(map(second, scan_iter(text)))
        found: set[str] = set()
        for line in text.split("\n"):
            hit = cache.get(line)
            if hit is None:
                if held > _LINE_CACHE_CHARS:
                    cache.clear()
                    held = 0
                hit = cache[line] = frozenset(map(second, scan_iter(line)))
                held += len(line) + 64
            if hit:
                found.update(hit)
        return found

    return scan_lines


# Groups of at least this many rules dispatch on ``anchors`` (the two process-creation groups hold
# ~1,180 rules each, two thirds of them anchored on an image or original file name).
SPLIT_MIN = 200


def build_group(entries: Sequence[RuleCode], split_min: int = SPLIT_MIN) -> GroupFn:
    """The function testing every entry against a lower-case-keyed event dict (rule indices, maybe repeated).

    A group of ``split_min`` entries or more is split by ``anchors``: one generated function for the
    entries without anchors, and per base name one for the entries anchored on it (whatever the
    field), generated the first time an event has that name in one of the anchor fields. An event
    runs the first and the ones of its names, so building costs what the data uses and an event is
    tested by fewer rules (a rule may run on a name it anchors in another field: anchors only
    filter, the test decides). A rule anchored on two names an event has comes back twice.
    Smaller groups are one function.
    """
    if len(entries) < split_min:
        return _generate(entries)
    base: list[RuleCode] = []
    by_name: dict[str, dict[int, RuleCode]] = {}  # name → entries by position, so each is in once
    fields: set[str] = set()
    for pos, e in enumerate(entries):
        if e.code.anchors is None:
            base.append(e)
            continue
        for key, name in e.code.anchors:
            fields.add(key)
            by_name.setdefault(name, {})[pos] = e
    if not by_name:
        return _generate(entries)
    anchored = {name: [got[p] for p in sorted(got)] for name, got in by_name.items()}
    first = _generate(base)
    keys = tuple(sorted(fields))
    built: dict[str, GroupFn] = {}

    def group(ev: dict[str, Any]) -> list[int]:
        r = first(ev)
        ran: list[str] = []
        for key in keys:
            o = ev.get(key)
            if o is None:
                continue
            name = (o if o.__class__ is str else tostr(o)).lower().rpartition("\\")[2]
            fn = built.get(name)
            if fn is None:
                todo = anchored.get(name)
                if todo is None:
                    continue
                fn = built[name] = _generate(todo)
            if name in ran:
                continue
            ran.append(name)
            hits = fn(ev)
            if hits:
                r = r + hits if r else hits
        return r

    return group


def _generate(entries: Sequence[RuleCode]) -> GroupFn:
    """One generated function testing every entry, in order."""
    namespace: dict[str, Any] = {"_tostr": tostr, "_EMPTY": frozenset()}
    fields: dict[str, str] = {}
    words: dict[str, set[str]] = {}
    uses_keywords = False
    body: list[str] = []
    for e in entries:
        namespace.update(e.code.consts)
        fields.update(e.code.fields)
        for s, lits in e.code.ac_words.items():
            words.setdefault(s, set()).update(lits)
        uses_keywords = uses_keywords or e.code.uses_keywords
        body.append(f"    if {e.code.expr}: r.append({e.rule_index})")
    head = ["def _group(ev):"]
    for name, s in fields.items():
        head += [
            f"    o{s} = ev.get({name!r})",
            f"    if o{s} is None: p{s} = False; l{s} = ''",
            "    else:",
            f"        if o{s}.__class__ is not str: o{s} = _tostr(o{s})",
            f"        p{s} = True; l{s} = o{s}.lower()",
        ]
    for s, ws in words.items():
        namespace[f"_ac{s}"] = _scanner(ws)
        head.append(f"    h{s} = _ac{s}(l{s}) if p{s} else _EMPTY")
    if uses_keywords:
        head.append("    KW = [(v if v.__class__ is str else _tostr(v)).lower() for v in ev.values() if v is not None]")
    head.append("    r = []")
    source = "\n".join([*head, *body, "    return r"])
    exec(compile(source, "<sigma-group>", "exec"), namespace)
    fn: GroupFn = namespace["_group"]
    return fn


def dispatch_key(view: dict[str, Any]) -> tuple[str, str] | None:
    """(lower-case channel, lower-case event id) of a lower-case-keyed event, None without a channel."""
    channel = view.get("channel")
    if channel is None:
        return None
    eid = view.get("eventid")
    return str(channel).lower(), "" if eid is None else tostr(eid).lower()
