"""STIX patterns pushed down to a SIEM: EQL for Elasticsearch, SPL for Splunk.

Each observation becomes one query whose hits are the events our engine would count for it: the query reads
the same Sysmon/Windows fields ``telemetry.observed_objects`` reads (through the Sigma path's field mapping,
``siem_convert.siem_field``, for ECS indices), one *reading* per way an event shows an object (a file is the
process image, the loaded image or the written file; a process is the one started or its parent …), the
readings OR-ed, the comparisons of one reading AND-ed as STIX's one-object rule requires. Matching is
case-insensitive as in the engine (EQL ``:``/``like~``/``regex~``; SPL search terms, ``lower()``/``(?i)``).

Between observations only what counts can settle is pushed down: OR (the counts add up, as the engine's) and
AND without a qualifier (every side seen, then the counts add up). FOLLOWEDBY, WITHIN, REPEATS and START/STOP
need the events' times correlated, which a count cannot give: :class:`NotExpressibleError`, naming the indicator, as
for any comparison a dialect cannot state exactly (MATCHES a regular expression Lucene's dialect lacks, a
regular expression or wildcard on a name the telemetry only holds inside a path, process ids …).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dcoflow.models.patterns.compile import Cmp, Node, Observation, ObsNode, ObsOp, Pattern, PatternError
from dcoflow.models.sigma.siem_convert import FieldMapping, siem_field

Dialect = Literal["eql", "spl"]


class NotExpressibleError(PatternError):
    """A pattern (or a part of it) the SIEM's query language cannot state exactly; ``object`` names the
    indicator. The sweep reports the indicator as not evaluable on that source, never as not found."""


# -- a small, dialect-neutral predicate tree ---------------------------------------------------------------
ANY, ONE = "\x00*", "\x00?"  # wildcard tokens inside a Glob (never occur in a literal)
Glob = tuple[str, ...]  # literal runs and ANY/ONE tokens


@dataclass(frozen=True, slots=True)
class Match:
    """``field`` equals (case-insensitively) one of ``globs``."""

    field: str
    globs: tuple[Glob, ...]


@dataclass(frozen=True, slots=True)
class Regex:
    field: str
    pcre: str  # the pattern as written (search semantics)


@dataclass(frozen=True, slots=True)
class Number:
    field: str
    op: str  # == < <= > >=
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Cidr:
    field: str
    network: str


@dataclass(frozen=True, slots=True)
class Present:
    field: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class Not:
    operand: Pred


@dataclass(frozen=True, slots=True)
class All:
    operands: tuple[Pred, ...]


@dataclass(frozen=True, slots=True)
class Either:
    """At least one operand holds."""

    operands: tuple[Pred, ...]


Pred = Match | Regex | Number | Cidr | Present | Not | All | Either

# -- where the telemetry keeps each STIX property ------------------------------------------------------------
# A reading: STIX path → (Sysmon field, form) and the fields that must be absent/present for the event to show
# the object this way. Forms: value (the field's value), name (the last segment of a path), hash:<ALGO> (one
# entry of Sysmon's Hashes), key (a registry key, hive written out), parent (the key above the field's),
# number (a port).
Form = str


@dataclass(frozen=True, slots=True)
class Reading:
    fields: dict[str, tuple[str, Form]]
    needs: tuple[tuple[str, bool], ...] = ()  # (field, must be present?)
    any_of: tuple[str, ...] = ()  # at least one of these fields present
    hash_needs: tuple[tuple[str, bool], ...] = ()  # when the event's Hashes are this object's


_HASHES = ("MD5", "SHA1", "SHA256", "SHA384", "SHA512", "IMPHASH")
_IMAGE_HASHED = (("ImageLoaded", False), ("TargetFilename", False))


def _file(field: str, prefix: str = "") -> dict[str, tuple[str, Form]]:
    out: dict[str, tuple[str, Form]] = {f"{prefix}name": (field, "name")}
    out.update({f"{prefix}hashes.{a}": ("Hashes", f"hash:{a}") for a in _HASHES})
    return out


_PROCESS = {"command_line": ("CommandLine", "value"), "parent_ref.command_line": ("ParentCommandLine", "value"),
            "parent_ref.image_ref.name": ("ParentImage", "name"), "creator_user_ref.user_id": ("User", "value"),
            "creator_user_ref.account_login": ("User", "name")}
READINGS: dict[str, tuple[Reading, ...]] = {
    # the Hashes of an event belong to the loaded image, else the written file, else the image (as telemetry.py)
    "file": (Reading(_file("Image"), hash_needs=_IMAGE_HASHED), Reading(_file("ImageLoaded")),
             Reading(_file("TargetFilename"), hash_needs=(("ImageLoaded", False),))),
    "process": (Reading({**_PROCESS, **_file("Image", "image_ref.")}, hash_needs=_IMAGE_HASHED),
                Reading({"command_line": ("ParentCommandLine", "value"), "image_ref.name": ("ParentImage", "name"),
                         "child_refs[*].command_line": ("CommandLine", "value"),
                         "child_refs[*].image_ref.name": ("Image", "name")}),
                Reading({"image_ref.name": ("SourceImage", "name")}),
                Reading({"image_ref.name": ("TargetImage", "name")})),
    "network-traffic": (Reading({"src_ref.value": ("SourceIp", "value"), "dst_ref.value": ("DestinationIp", "value"),
                                 "src_port": ("SourcePort", "number"), "dst_port": ("DestinationPort", "number"),
                                 "protocols[*]": ("Protocol", "value")}, any_of=("SourceIp", "DestinationIp")),),
    "ipv4-addr": tuple(Reading({"value": (f, "value")}) for f in ("SourceIp", "DestinationIp", "IpAddress")),
    "ipv6-addr": tuple(Reading({"value": (f, "value")}) for f in ("SourceIp", "DestinationIp", "IpAddress")),
    "domain-name": (Reading({"value": ("QueryName", "domain")}), Reading({"value": ("DestinationHostname", "domain")})),
    "windows-registry-key": (Reading({"key": ("TargetObject", "key")}),
                             Reading({"key": ("TargetObject", "parent"), "values[*].name": ("TargetObject", "name"),
                                      "values[*].data": ("Details", "value")}, any_of=("Details", "NewName"))),
    "user-account": (Reading({"user_id": ("User", "value"), "account_login": ("User", "name")}),
                     *(Reading({"user_id": (f"{who}UserName", f"account:{who}DomainName"),
                                "account_login": (f"{who}UserName", "name")}) for who in ("Target", "Subject"))),
}
_HIVES = {"HKEY_LOCAL_MACHINE": "HKLM", "HKEY_USERS": "HKU", "HKEY_CURRENT_USER": "HKCU",
          "HKEY_CLASSES_ROOT": "HKCR", "HKEY_CURRENT_CONFIG": "HKCC"}


def pushdown_paths(kind: str) -> frozenset[str]:
    return frozenset(p for r in READINGS.get(kind, ()) for p in r.fields)


# -- STIX comparison → predicate ---------------------------------------------------------------------------
def _refuse(indicator: str, what: str) -> NotExpressibleError:
    return NotExpressibleError(f"indicator {indicator}: not expressible as a SIEM query: {what}", object=indicator,
                          hint="sweep local telemetry (--data) for this indicator")


def _like_glob(text: str) -> Glob:
    out: list[str] = []
    for part in re.split(r"([%_])", text):
        if part == "%":
            out.append(ANY)
        elif part == "_":
            out.append(ONE)
        elif part:
            out.append(part)
    return tuple(out)


def _literal(glob: Glob) -> bool:
    return all(t not in (ANY, ONE) for t in glob)


def _globs(cmp: Cmp, form: Form, indicator: str) -> tuple[Glob, ...]:
    """The globs the field must equal for ``cmp`` (= / IN / LIKE) under ``form``."""
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    raw = [_like_glob(str(v)) if cmp.op == "LIKE" else (str(v),) for v in values]
    where = f"{cmp.type}:{cmp.path} {cmp.op}"
    out: list[Glob] = []
    for g in raw:
        if form in ("value", "number"):
            out.append(g)
        elif form == "domain":  # DNS names may end with the root's dot
            out += [g, (*g, ".")] if _literal(g) else [g]
        elif form == "name":  # the last segment of a path: \name, /name or the whole value
            if not _literal(g[1:]) or any("\\" in t or "/" in t for t in g if t not in (ANY, ONE)):
                raise _refuse(indicator, f"{where}: a wildcard inside a name the telemetry holds in a path")
            if g[:1] == (ANY,):
                out.append(g)
            else:
                out += [(ANY, "\\", *g), (ANY, "/", *g), g]
        elif form.startswith("hash:"):  # one entry of SHA1=…,MD5=…: bounded by the start, a comma or the end
            if not _literal(g):
                raise _refuse(indicator, f"{where}: a wildcard on a hash")
            entry = f"{form[5:]}={g[0] if g else ''}"
            out += [(entry,), (entry, ",", ANY), (ANY, ",", entry), (ANY, ",", entry, ",", ANY)]
        elif form in ("key", "parent"):
            out += _key_globs(g, form == "parent", indicator, where)
        else:
            raise _refuse(indicator, f"{where}: unknown form {form}")
    return tuple(out)


def _key_globs(g: Glob, parent: bool, indicator: str, where: str) -> list[Glob]:
    """A registry key as Sysmon writes it (HKLM\\… for HKEY_LOCAL_MACHINE\\…); ``parent``: the field's key is a
    value under ``g`` (one more segment, which must hold no backslash: checked with the second glob)."""
    forms = [g]
    head = g[0] if g and g[0] not in (ANY, ONE) else ""
    hive, sep, rest = head.partition("\\")
    if hive.upper() in _HIVES:
        forms.append((_HIVES[hive.upper()] + sep + rest, *g[1:]))
    elif g[:1] != (ANY,) and (head.upper().startswith("HK") or not head):
        raise _refuse(indicator, f"{where}: a registry key must start with a full hive name or '%'")
    if parent:
        return [(*f, "\\", ANY) for f in forms]
    return forms


def _cmp(cmp: Cmp, reading: Reading, indicator: str) -> Pred | None:
    """The comparison as a predicate on this reading's field; None: this reading does not show the property."""
    spec = reading.fields.get(cmp.path)
    if spec is None:
        return None
    name, form = spec
    where = f"{cmp.type}:{cmp.path} {cmp.op}"
    pred: Pred
    if form.startswith("account:") and cmp.op in ("=", "IN"):  # Security events: name and domain apart
        pred = Either(tuple(_account(name, form[8:], str(v)) for v in
                          (cmp.value if isinstance(cmp.value, tuple) else (cmp.value,))))
    elif form.startswith("account:") and cmp.op != "MATCHES":
        raise _refuse(indicator, f"{where}: a pattern on a user id the telemetry keeps as name and domain apart")
    elif cmp.op in ("=", "IN", "LIKE"):
        pred = Match(name, _globs(cmp, form, indicator))
        if form == "parent":  # exactly one segment below the key
            deeper = Match(name, tuple((*g, "\\", ANY) for g in pred.globs))
            pred = All((pred, Not(deeper)))
    elif cmp.op == "MATCHES":
        if form not in ("value", "domain"):
            raise _refuse(indicator, f"{where}: a regular expression on a value the telemetry holds inside another "
                                     "or in parts")
        pred = Regex(name, str(cmp.value))
    elif cmp.op in ("<", "<=", ">", ">="):
        if form != "number" or not isinstance(cmp.value, int):
            raise _refuse(indicator, f"{where}: an order comparison on a non-numeric property")
        pred = Number(name, cmp.op, (cmp.value,))
    elif cmp.op == "ISSUBSET" and form == "value" and cmp.path.endswith("value"):
        pred = Cidr(name, str(cmp.value))
    else:
        raise _refuse(indicator, f"{where}: operator {cmp.op}")
    if form == "number" and isinstance(pred, Match):
        try:
            pred = Number(name, "==", tuple(int("".join(g)) for g in pred.globs))
        except ValueError:
            raise _refuse(indicator, f"{where}: a port compared with text") from None
    if cmp.negated:  # STIX NOT / != hold only where the property is present
        pred = All((Present(name), Not(pred)))
    if form.startswith("hash:") and reading.hash_needs:
        pred = All((*(Present(f, want) for f, want in reading.hash_needs), pred))
    return pred


def _account(name: str, domain: str, user_id: str) -> Pred:
    """``DOMAIN\\name`` as telemetry.py composes it from a name and a domain field (a bare name: no domain)."""
    if "\\" not in user_id:
        return All((Match(name, ((user_id,),)), Present(domain, False)))
    dom, _, login = user_id.rpartition("\\")
    return Either((Match(name, ((user_id,),)), All((Match(name, ((login,),)), Match(domain, ((dom,),))))))


def _node(node: Node, reading: Reading, indicator: str) -> Pred | None:
    if isinstance(node, Cmp):
        return _cmp(node, reading, indicator)
    parts = [_node(o, reading, indicator) for o in node.operands]
    if node.op == "AND":
        return None if any(p is None for p in parts) else All(tuple(p for p in parts if p is not None))
    kept = tuple(p for p in parts if p is not None)
    return Either(kept) if kept else None


def observation_predicate(obs: Observation, indicator: str) -> Pred:
    """The observation as one predicate: its expression under every reading of its object type, OR-ed."""
    kind = next(iter(obs.types))
    if len(obs.types) > 1:
        raise _refuse(indicator, "an observation comparing several object types")
    readings = READINGS.get(kind)
    if not readings:
        raise _refuse(indicator, f"no SIEM field holds {kind} objects")
    unknown = sorted({c.path for c in _cmps(obs.expr)} - pushdown_paths(kind))
    if unknown:  # dropping an OR branch would undercount: the whole indicator is refused
        raise _refuse(indicator, "no SIEM field holds " + ", ".join(f"{kind}:{u}" for u in unknown))
    out: list[Pred] = []
    for r in readings:
        pred = _node(obs.expr, r, indicator)
        if pred is None:
            continue
        guards: list[Pred] = [Present(f, want) for f, want in r.needs]
        if r.any_of:
            guards.append(Either(tuple(Present(f) for f in r.any_of)))
        out.append(All((*guards, pred)) if guards else pred)
    return _absorb(out)


def _absorb(preds: list[Pred]) -> Pred:
    """The readings OR-ed, without those another implies away (A or (g and A) is A): shorter queries."""
    flat = list(dict.fromkeys(p for r in preds for p in (r.operands if isinstance(r, Either) else (r,))))
    kept = [p for p in flat if not (isinstance(p, All) and any(o in flat for o in p.operands))]
    return kept[0] if len(kept) == 1 else Either(tuple(kept))


def _cmps(node: Node) -> Iterator[Cmp]:
    if isinstance(node, Cmp):
        yield node
    else:
        for o in node.operands:
            yield from _cmps(o)


def fields_of(pred: Pred) -> set[str]:
    """The fields a predicate compares (not those it only needs present or absent to tell readings apart)."""
    if isinstance(pred, Present):
        return set()
    if isinstance(pred, Not):
        return fields_of(pred.operand)
    if isinstance(pred, All | Either):
        return {f for o in pred.operands for f in fields_of(o)}
    return {pred.field}


# -- rendering ---------------------------------------------------------------------------------------------
def _map(pred: Pred, mapping: FieldMapping) -> Pred:
    """The predicate with Sysmon field names replaced by where the index keeps them."""
    if isinstance(pred, Not):
        return Not(_map(pred.operand, mapping))
    if isinstance(pred, All):
        return All(tuple(_map(o, mapping) for o in pred.operands))
    if isinstance(pred, Either):
        return Either(tuple(_map(o, mapping) for o in pred.operands))
    return replace(pred, field=siem_field(pred.field, mapping))


def _q(text: str) -> str:
    """A double-quoted string literal (EQL and SPL both escape backslash and quote with a backslash)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_LUCENE_LITERAL = re.compile(r'[.?+*|{}\[\]()"\\#@&<>~]')
_PCRE_ONLY = re.compile(r"\\[dDwWsSbBAZzGQEpPXR0-9xuc]|\(\?|[*+?}][?+]|(?<![\\\[])\^|(?<!\\)\$")
_LUCENE_RESERVED = re.compile(r'(?<!\\)([@&<>~#"])')


def lucene_regex(pcre: str) -> str | None:
    """A PCRE search pattern as an equivalent full-match Lucene regular expression (what EQL ``regex~`` runs),
    or None when it uses what Lucene's syntax lacks (classes like \\d, anchors inside, look-around, lazy or
    possessive quantifiers, back-references)."""
    core, head, tail = pcre, ".*", ".*"
    if core.startswith("^"):
        core, head = core[1:], ""
    if core.endswith("$") and not core.endswith("\\$"):
        core, tail = core[:-1], ""
    if (not head or not tail) and "|" in core:
        return None  # ^a|b$ anchors one branch each; not worth rewriting
    if _PCRE_ONLY.search(core.replace("\\\\", "")):
        return None
    escaped = _LUCENE_RESERVED.sub(r"\\\1", core)
    return f"{head}({escaped}){tail}"


def _glob_lucene(glob: Glob) -> str:
    return "".join(".*" if t == ANY else "." if t == ONE else _LUCENE_LITERAL.sub(lambda m: "\\" + m.group(0), t)
                   for t in glob)


def _eql(pred: Pred, indicator: str, numeric: bool) -> str:
    if isinstance(pred, Match):
        plain = [g for g in pred.globs if all(t in (ANY,) or ("*" not in t and "?" not in t) for t in g)
                 and ONE not in g]
        parts = []
        if plain:  # ":" is EQL's case-insensitive equality, with * as its wildcard
            values = ["".join("*" if t == ANY else t for t in g) for g in plain]
            parts.append(f"{pred.field} : " + (_q(values[0]) if len(values) == 1 else
                                                 "(" + ", ".join(_q(v) for v in values) + ")"))
        parts += [f"{pred.field} regex~ {_q(_glob_lucene(g))}" for g in pred.globs if g not in plain]
        return _either(parts, "or")
    if isinstance(pred, Regex):
        lucene = lucene_regex(pred.pcre)
        if lucene is None:
            raise _refuse(indicator, f"MATCHES {pred.pcre!r} uses regular-expression syntax Elasticsearch lacks")
        return f"{pred.field} regex~ {_q(lucene)}"
    if isinstance(pred, Number):
        if not numeric:  # Sysmon fields kept as text compare as text: equality only
            if pred.op != "==":
                raise _refuse(indicator, f"an order comparison on {pred.field}, a text field in this index")
            return f"{pred.field} : " + ("(" + ", ".join(_q(str(v)) for v in pred.values) + ")"
                                         if len(pred.values) > 1 else _q(str(pred.values[0])))
        if pred.op == "==":
            return f"{pred.field} in ({', '.join(map(str, pred.values))})" if len(pred.values) > 1 \
                else f"{pred.field} == {pred.values[0]}"
        return f"{pred.field} {pred.op} {pred.values[0]}"
    if isinstance(pred, Cidr):
        return f"cidrMatch({pred.field}, {_q(pred.network)})"
    if isinstance(pred, Present):
        return f"{pred.field} {'!=' if pred.present else '=='} null"
    if isinstance(pred, Not):
        return f"not {_eql(pred.operand, indicator, numeric)}"
    joiner = " and " if isinstance(pred, All) else " or "
    return "(" + joiner.join(_eql(o, indicator, numeric) for o in pred.operands) + ")"


def _either(terms: list[str], word: str) -> str:
    """One term as it is; several joined by ``word`` (the dialect's OR) in parentheses."""
    return terms[0] if len(terms) == 1 else "(" + f" {word} ".join(terms) + ")"


def _spl_search_ok(pred: Pred) -> bool:
    """SPL's search command can state it: no regex, no single-character wildcard, no literal ``*``."""
    if isinstance(pred, Match):
        return all(ONE not in g and not any("*" in t for t in g if t != ANY) for g in pred.globs)
    if isinstance(pred, Regex):
        return False
    if isinstance(pred, Not):
        return _spl_search_ok(pred.operand)
    if isinstance(pred, All | Either):
        return all(_spl_search_ok(o) for o in pred.operands)
    return True


def _spl_search(pred: Pred) -> str:
    """Search-command terms: ``field="value"`` compares case-insensitively, ``*`` is the wildcard."""
    if isinstance(pred, Match):
        terms = [f"{pred.field}={_q(''.join('*' if t == ANY else t for t in g))}" for g in pred.globs]
        return _either(terms, "OR")
    if isinstance(pred, Number):
        op = "=" if pred.op == "==" else pred.op
        terms = [f"{pred.field}{op}{v}" for v in pred.values]
        return _either(terms, "OR")
    if isinstance(pred, Cidr):  # search terms match IP fields against a CIDR block
        return f"{pred.field}={_q(pred.network)}"
    if isinstance(pred, Present):
        return f"{pred.field}=*" if pred.present else f"NOT {pred.field}=*"
    if isinstance(pred, Not):
        return f"NOT {_spl_search(pred.operand)}"
    if isinstance(pred, All):
        return "(" + " ".join(_spl_search(o) for o in pred.operands) + ")"
    if isinstance(pred, Either):
        return "(" + " OR ".join(_spl_search(o) for o in pred.operands) + ")"
    raise AssertionError(pred)


def _spl_where(pred: Pred) -> str:
    """An eval expression for ``| where``: what the search command cannot say (regular expressions, ``_``)."""
    if isinstance(pred, Match):
        parts = []
        for g in pred.globs:
            if _literal(g):
                parts.append(f"lower({pred.field})={_q(''.join(g).lower())}")
            else:
                regex = "(?is)^" + "".join(".*" if t == ANY else "." if t == ONE else re.escape(t) for t in g) + "$"
                parts.append(f"match({pred.field}, {_q(regex)})")
        return _either(parts, "OR")
    if isinstance(pred, Regex):
        return f"match({pred.field}, {_q('(?i)' + pred.pcre)})"
    if isinstance(pred, Number):
        op = "=" if pred.op == "==" else pred.op
        terms = [f"tonumber({pred.field}){op}{v}" for v in pred.values]
        return _either(terms, "OR")
    if isinstance(pred, Cidr):
        return f"cidrmatch({_q(pred.network)}, {pred.field})"
    if isinstance(pred, Present):
        return f"{'isnotnull' if pred.present else 'isnull'}({pred.field})"
    if isinstance(pred, Not):
        return f"NOT ({_spl_where(pred.operand)})"
    joiner = " AND " if isinstance(pred, All) else " OR "
    return "(" + joiner.join(_spl_where(o) for o in pred.operands) + ")"


_ECS_NUMERIC = ("source.port", "destination.port")


def render(pred: Pred, dialect: Dialect, mapping: FieldMapping, indicator: str) -> str:
    """One observation's query: EQL (``any where …``) or SPL without the leading ``search index=…``."""
    if dialect == "spl":
        if mapping is not FieldMapping.SYSMON:
            raise _refuse(indicator, "the ECS field mapping is for Elastic indices, not Splunk")
        pred = _map(pred, mapping)
        return _spl_search(pred) if _spl_search_ok(pred) else f"* | where {_spl_where(pred)}"
    mapped = _map(pred, mapping)
    numeric = mapping is FieldMapping.ECS and all(f in _ECS_NUMERIC for f in _number_fields(mapped))
    return f"any where {_eql(mapped, indicator, numeric)}"


def _number_fields(pred: Pred) -> set[str]:
    if isinstance(pred, Number):
        return {pred.field}
    if isinstance(pred, Not):
        return _number_fields(pred.operand)
    if isinstance(pred, All | Either):
        return {f for o in pred.operands for f in _number_fields(o)}
    return set()


# -- whole patterns --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ObservationQuery:
    query: str
    fields: frozenset[str]  # where the index keeps what the query reads (for "not evaluable on this data")


@dataclass(frozen=True, slots=True)
class CountPlan:
    """How an indicator's count comes from its observations' counts: OR adds them up; AND adds them up when
    every side was seen, else 0 — the engine's rule for observation expressions without qualifiers."""

    op: Literal["OR", "AND"]
    parts: tuple[ObservationQuery | CountPlan, ...]

    def queries(self) -> list[ObservationQuery]:
        return [q for p in self.parts for q in ([p] if isinstance(p, ObservationQuery) else p.queries())]

    def count(self, counts: dict[str, int]) -> int:
        values = [counts[p.query] if isinstance(p, ObservationQuery) else p.count(counts) for p in self.parts]
        return 0 if self.op == "AND" and not all(values) else sum(values)


def observation_query(obs: Observation, indicator: str, dialect: Dialect, mapping: FieldMapping) -> ObservationQuery:
    pred = observation_predicate(obs, indicator)
    return ObservationQuery(render(pred, dialect, mapping, indicator),
                            frozenset(siem_field(f, mapping) for f in fields_of(pred)))


def observation_queries(pattern: Pattern, indicator: str, dialect: Dialect,
                        mapping: FieldMapping | str = FieldMapping.SYSMON) -> list[ObservationQuery]:
    """One query per observation, whatever combines them: what a sweep fetches to evaluate a pattern whose
    qualifiers or FOLLOWEDBY cannot be pushed down (every event the pattern can match matches one of them)."""
    return [observation_query(o, indicator, dialect, FieldMapping(mapping)) for o in pattern.observations]


def translate(pattern: Pattern, indicator: str, dialect: Dialect,
              mapping: FieldMapping | str = FieldMapping.SYSMON) -> CountPlan:
    """The pattern as SIEM queries and the rule combining their counts; raises :class:`NotExpressibleError`."""
    fm = FieldMapping(mapping)

    def plan(node: ObsNode) -> ObservationQuery | CountPlan:
        if isinstance(node, Observation):
            return observation_query(node, indicator, dialect, fm)
        if isinstance(node, ObsOp) and node.op in ("OR", "AND"):
            return CountPlan(node.op, tuple(plan(o) for o in node.operands))  # type: ignore[arg-type]
        if isinstance(node, ObsOp):
            raise _refuse(indicator, f"{node.op} between observations needs the events' times in order, which "
                                     "a count cannot give")
        raise _refuse(indicator, f"the qualifier {_qualifier(node)} is not pushed down (it needs the events' "
                                 "times, not their count)")

    root = plan(pattern.root)
    return root if isinstance(root, CountPlan) else CountPlan("OR", (root,))


def _qualifier(node: ObsNode) -> str:
    q = getattr(node, "within_s", None), getattr(node, "repeats", None)
    return "WITHIN" if q[0] is not None else "REPEATS" if q[1] is not None else "START/STOP"


def presence_query(fields: Sequence[str], dialect: Dialect) -> str:
    """A query for events carrying any of ``fields`` (is the indicator evaluable on this index at all?): SPL, or
    for Elastic a Lucene query string (``_exists_``), which Elasticsearch counts in one request."""
    if dialect == "spl":  # one event answers the question: the job stops there
        return "(" + " OR ".join(f"{f}=*" for f in fields) + ") | head 1"
    return " OR ".join(f"_exists_:{f}" for f in fields)
