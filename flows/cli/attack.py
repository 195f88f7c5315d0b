"""`dco attack …`: query the ATT&CK catalog (techniques, groups, campaigns, software, mitigations)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from dcoflow.flows.cli.output import console, handle_errors, print_json, table, u
from dcoflow.models.attack import ALL_VIA, AttackObject, Catalog, Group, Kind, Technique, Via

app = typer.Typer(help="Query the ATT&CK catalog", no_args_is_help=True)

SourceOpt = Annotated[str | None, typer.Option("--attack", help="ATT&CK bundle file, https URL or "
                                               "taxii+https://…/collections/<id>/ (default DCO_ATTACK_SOURCE).")]
DomainOpt = Annotated[str | None, typer.Option("--domain", help="enterprise, mobile or ics.")]
KeyArg = Annotated[str, typer.Argument(help="ATT&CK id, name or alias.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document instead of tables.")]


class Listable(StrEnum):
    techniques = "techniques"
    tactics = "tactics"
    groups = "groups"
    campaigns = "campaigns"
    software = "software"
    mitigations = "mitigations"
    detection_strategies = "detection-strategies"
    analytics = "analytics"
    data_components = "data-components"


def _catalog(source: str | None, domain: str | None) -> Catalog:
    from dcoflow.connectors.attack import load_catalog

    return load_catalog(source, domain)


def _as_dict(obj: AttackObject, *, description: bool = True) -> dict[str, Any]:
    """The object's fields as JSON-ready data (lists of ids stay ids)."""
    data: dict[str, Any] = {"type": str(obj.kind)}
    for name in obj.__dataclass_fields__:
        if name.startswith("_"):
            continue
        value = getattr(obj, name)
        if name == "log_sources" and value and not isinstance(value[0], tuple):
            value = [{"data_component_id": s.data_component_id, "name": s.name, "channel": s.channel}
                     for s in value]
        data[name] = value
    if description:
        data["description"] = obj.description
    return data


def _show(cat: Catalog, obj: AttackObject, relations: dict[str, list[str]]) -> None:
    state = "current" if obj.is_current else ("revoked → " + (obj.revoked_by or "?") if obj.revoked else "deprecated")
    console.print(f"[bold]{u(obj.attack_id)}[/] {u(obj.name)}  [dim]({obj.kind}, {state}; "
                  f"{u(cat.name)} v{u(cat.version)})[/]")
    if obj.url:
        console.print(obj.url)
    rows: list[tuple[str, str]] = []
    for label, ids in relations.items():
        if ids:
            rows.append((label, ", ".join(ids)))
    if rows:
        table("", ["", ""], rows)
    if obj.description:
        console.print(obj.description.split("\n\n")[0])


@app.command("technique")
@handle_errors
def technique(
    attack_id: Annotated[str, typer.Argument(help="Technique id, e.g. T1059.001 (ids of other releases resolve).")],
    attack: SourceOpt = None, domain: DomainOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show a technique: tactics, platforms, sub-techniques, mitigations and its detection chain."""
    cat = _catalog(attack, domain)
    resolution = cat.resolve(attack_id, warn=False)
    if resolution.attack_id is None:
        cat.technique(attack_id)  # raises NotFoundError with suggestions
    t = cat.technique(resolution.attack_id or attack_id)
    if as_json:
        print_json({**_as_dict(t), "resolution": {"requested": resolution.requested, "status": resolution.status,
                                                  "note": resolution.note}})
        return
    if resolution.note:
        console.print(f"[yellow]{u(resolution.note)}[/]")
    _show(cat, t, {
        "tactics": t.tactics, "platforms": t.platforms, "parent": [t.parent_id] if t.parent_id else [],
        "sub-techniques": t.subtechnique_ids, "mitigations": t.mitigation_ids,
        "detection strategies": t.detection_strategy_ids, "analytics": t.analytic_ids,
        "data components": [f"{d.attack_id} {d.name}" for d in t.data_components],
        "groups (direct)": t.group_ids,
    })


def count_statement(group: Group, found: dict[str, frozenset[Via]]) -> str:
    """Say what a technique count of a group counts."""
    direct = sum(1 for v in found.values() if "direct" in v)
    camp = sum(1 for v in found.values() if "campaigns" in v)
    sw = sum(1 for v in found.values() if "software" in v)
    return (f"{group.name} ({group.attack_id}): {len(found)} techniques — {direct} used directly, "
            f"{camp} through {len(group.campaign_ids)} attributed campaigns, "
            f"{sw} through {len(group.software_ids)} software it uses (a technique may count on several paths)")


@app.command("group")
@handle_errors
def group(
    id_or_name: Annotated[str, typer.Argument(help="Group id, name or alias (G0016, APT29, 'Cozy Bear').")],
    via: Annotated[list[Via] | None, typer.Option("--via", help="Paths to count (repeat; default all).")] = None,
    attack: SourceOpt = None, domain: DomainOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show a group and the techniques it uses, saying what the count counts."""
    cat = _catalog(attack, domain)
    g = cat.group(id_or_name)
    paths: tuple[Via, ...] = tuple(via) if via else ALL_VIA
    found = cat.group_techniques(g.attack_id, via=paths)
    if as_json:
        print_json({**_as_dict(g), "via": list(paths), "statement": count_statement(g, found),
                    "techniques": [{"attack_id": t, "name": cat.technique(t).name, "via": sorted(v)}
                                   for t, v in found.items()]})
        return
    _show(cat, g, {"aliases": g.aliases, "campaigns": g.campaign_ids, "software": g.software_ids})
    table(f"Techniques of {g.name}", ["technique", "name", "tactics", "via"],
          ([t, cat.technique(t).name, ", ".join(cat.technique(t).tactics), ", ".join(sorted(v))]
           for t, v in found.items()))
    console.print(count_statement(g, found))


def _simple(kind: Kind, relations: dict[str, str]) -> Any:
    def command(
        key: KeyArg,
        attack: SourceOpt = None, domain: DomainOpt = None, as_json: JsonOpt = False,
    ) -> None:
        cat = _catalog(attack, domain)
        obj = cat.get(kind, key)
        if as_json:
            print_json(_as_dict(obj))
            return
        _show(cat, obj, {label: list(getattr(obj, attr)) for label, attr in relations.items()})

    command.__doc__ = f"Show a {kind} and what it relates to."
    return command


app.command("campaign")(handle_errors(_simple(Kind.CAMPAIGN, {
    "aliases": "aliases", "groups": "group_ids", "techniques": "technique_ids", "software": "software_ids"})))
app.command("software")(handle_errors(_simple(Kind.SOFTWARE, {
    "aliases": "aliases", "platforms": "platforms", "groups": "group_ids", "techniques": "technique_ids"})))
app.command("mitigation")(handle_errors(_simple(Kind.MITIGATION, {"techniques": "technique_ids"})))
app.command("detection-strategy")(handle_errors(_simple(Kind.DETECTION_STRATEGY, {
    "techniques": "technique_ids", "analytics": "analytic_ids"})))
app.command("analytic")(handle_errors(_simple(Kind.ANALYTIC, {
    "platforms": "platforms", "detection strategies": "detection_strategy_ids",
    "data components": "data_component_ids"})))
app.command("data-component")(handle_errors(_simple(Kind.DATA_COMPONENT, {
    "analytics": "analytic_ids", "techniques": "technique_ids"})))


@app.command("search")
@handle_errors
def search(
    text: Annotated[str, typer.Argument(help="Text in an id, name or alias.")],
    types: Annotated[list[Kind] | None, typer.Option("--type", help="Limit to these kinds (repeat).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    attack: SourceOpt = None, domain: DomainOpt = None, as_json: JsonOpt = False,
) -> None:
    """Find objects by id, name or alias."""
    hits = _catalog(attack, domain).search(text, types=types, limit=limit)
    if as_json:
        print_json([{"type": str(h.type), "attack_id": h.attack_id, "name": h.name} for h in hits])
        return
    table(f"{len(hits)} matches for {text!r}", ["type", "id", "name"], ((h.type, h.attack_id, h.name) for h in hits))


@app.command("tactics")
@handle_errors
def tactics(attack: SourceOpt = None, domain: DomainOpt = None, as_json: JsonOpt = False) -> None:
    """The tactics in kill-chain order."""
    cat = _catalog(attack, domain)
    rows = [{"attack_id": t.attack_id, "shortname": t.shortname, "name": t.name, "techniques": len(t.technique_ids)}
            for t in cat.tactics]
    if as_json:
        print_json(rows)
        return
    table(f"{cat.name} v{cat.version} tactics", ["id", "shortname", "name", "techniques"],
          ([r["attack_id"], r["shortname"], r["name"], r["techniques"]] for r in rows))


_LISTINGS: dict[Listable, str] = {
    Listable.techniques: "techniques", Listable.tactics: "tactics", Listable.groups: "groups",
    Listable.campaigns: "campaigns", Listable.software: "softwares", Listable.mitigations: "mitigations",
    Listable.detection_strategies: "detection_strategies", Listable.analytics: "analytics",
    Listable.data_components: "data_components",
}


@app.command("list")
@handle_errors
def list_(
    what: Annotated[Listable, typer.Argument(help="What to list.")],
    attack: SourceOpt = None, domain: DomainOpt = None, as_json: JsonOpt = False,
) -> None:
    """List current objects of one kind (revoked and deprecated ones are left out)."""
    cat = _catalog(attack, domain)
    items: list[AttackObject] = getattr(cat, _LISTINGS[what])
    if as_json:
        print_json([_as_dict(o, description=False) for o in items])
        return
    extra = "tactics" if what is Listable.techniques else None
    cols = ["id", "name"] + ([extra] if extra else [])
    table(f"{cat.name} v{cat.version}: {len(items)} {what.value}", cols,
          ([o.attack_id, o.name] + ([", ".join(o.tactics)] if isinstance(o, Technique) else []) for o in items))
