"""Sigma rules as SIEM queries: pySigma back ends plus the field mapping of the index they run on.

Back ends: ``elastic-lucene`` (``LuceneBackend``, run with ``query_string``), ``elastic-eql``
(``EqlBackend``) and ``splunk`` (``SplunkBackend``). Windows rules need a field mapping that says how
the index stores Windows events:

- ``sysmon``: raw Sysmon/Windows event fields (``Image``, ``CommandLine``, ``EventID``…), as Splunk's
  Windows add-ons and Winlogbeat's raw ``winlog.event_data`` keep them; pySigma's Sysmon + Windows
  log-source pipelines add the channel/EventID conditions a generic rule leaves implicit;
- ``ecs``: Elastic Common Schema (``process.executable``, ``destination.port``…), the default for
  Elastic Agent and Winlogbeat 7+; pySigma's ``ecs_windows`` pipeline maps the fields, and the
  ``event.category``/``event.type`` conditions below stand in for the EventID, which ECS indices
  describe by category instead (without them a process rule would also match network events that
  carry ``process.executable``).

A back end (and its pipeline) is built once per (back end, Windows or not, mapping) and reused: the
pipeline objects are stateless between conversions, while the *rules* are mutated in place by them,
so each conversion parses the rule's YAML afresh.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Any, Literal

from dcoflow.core.errors import ContentError, ValidationError
from dcoflow.models.hunting import RuleInfo

SiemBackend = Literal["elastic-lucene", "elastic-eql", "splunk"]


class FieldMapping(StrEnum):
    SYSMON = "sysmon"
    ECS = "ecs"


# Sigma log-source category → the ECS event categorisation of the same events (ECS reference,
# "event.category" and "event.type" allowed values).
ECS_CATEGORY: dict[str, dict[str, str]] = {
    "process_creation": {"event.category": "process", "event.type": "start"},
    "network_connection": {"event.category": "network"},
    "dns_query": {"event.category": "network", "network.protocol": "dns"},
    "file_event": {"event.category": "file"},
    "file_delete": {"event.category": "file", "event.type": "deletion"},
    "image_load": {"event.category": "library"},
    "registry_add": {"event.category": "registry"},
    "registry_set": {"event.category": "registry"},
    "registry_delete": {"event.category": "registry"},
    "registry_event": {"event.category": "registry"},
}


def _ecs_category_pipeline() -> Any:
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import AddConditionTransformation

    items = [
        ProcessingItem(transformation=AddConditionTransformation(dict(conditions)),
                       rule_conditions=[LogsourceCondition(category=category, product="windows")],
                       identifier=f"dcoflow_ecs_{category}")
        for category, conditions in ECS_CATEGORY.items()
    ]
    return ProcessingPipeline(items=items, name="dcoflow ECS event categories", priority=30)


@cache
def siem_backend(name: SiemBackend, windows: bool, mapping: FieldMapping) -> Any:
    """The pySigma back end for ``name`` with the pipeline for Windows rules under ``mapping``."""
    from sigma.backends.elasticsearch.elasticsearch_eql import EqlBackend
    from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
    from sigma.backends.splunk.splunk import SplunkBackend

    if mapping is FieldMapping.ECS and name == "splunk":
        raise ValidationError("the ECS field mapping is for Elastic indices, not Splunk", field="field_mapping",
                              suggestions=[FieldMapping.SYSMON.value])
    pipeline = None
    if windows and mapping is FieldMapping.SYSMON:
        from sigma.pipelines.sysmon.sysmon import sysmon_pipeline
        from sigma.pipelines.windows.windows import windows_logsource_pipeline

        pipeline = sysmon_pipeline() + windows_logsource_pipeline()
    elif windows:
        from sigma.pipelines.elasticsearch.windows import ecs_windows

        pipeline = ecs_windows() + _ecs_category_pipeline()
    cls = {"elastic-lucene": LuceneBackend, "elastic-eql": EqlBackend, "splunk": SplunkBackend}[name]
    return cls(pipeline) if pipeline is not None else cls()


def convert_rule(rule: RuleInfo, backend: SiemBackend, mapping: FieldMapping = FieldMapping.SYSMON) -> list[str]:
    """The rule as queries for ``backend`` (usually one); raises ContentError saying why it cannot be.

    Not thread-safe (pySigma back ends keep the last pipeline on themselves): convert in one thread.
    """
    return convert_rule_with_fields(rule, backend, mapping)[0]


def convert_rule_with_fields(rule: RuleInfo, backend: SiemBackend,
                             mapping: FieldMapping = FieldMapping.SYSMON) -> tuple[list[str], frozenset[str]]:
    """The rule's queries (``convert_rule``) and the fields its own detection reads, named as the queries name
    them (after the pipeline's mapping): what an index must carry for the rule to be evaluable on it at all.

    The conditions the pipeline adds (EventID, Channel, ``event.category``) are left out: they say which events,
    not whether the index keeps what the rule inspects. A rule with a keyword (any-field) search reads no field
    in particular: empty, so nobody concludes from missing fields that it cannot match.
    """
    from sigma.collection import SigmaCollection
    from sigma.rule import SigmaRule

    if not rule.yaml:
        raise ContentError("rule text not loaded", object=rule.path)
    windows = rule.logsource.get("product", "").lower() == "windows"
    converter = siem_backend(backend, windows, FieldMapping(mapping))
    try:
        collection = SigmaCollection.from_yaml(rule.yaml)  # fresh parse: pipelines mutate rules in place
        # each rule's own detections, before the pipeline adds its conditions (a correlation rule has none)
        own = [set(r.detection.detections) if isinstance(r, SigmaRule) else None for r in collection.rules]
        queries = converter.convert(collection)
    except Exception as exc:  # pySigma raises many unrelated types for unsupported constructs
        raise ContentError(f"cannot convert to {backend}: {type(exc).__name__}: {exc}", object=rule.path) from exc
    out = [str(q) for q in queries if str(q).strip()]
    if not out:
        raise ContentError(f"conversion to {backend} produced no query", object=rule.path)
    fields: set[str | None] = set()
    for r, names in zip(collection.rules, own, strict=True):  # the rules as the pipeline left them
        if names is None or not isinstance(r, SigmaRule):
            fields.add(None)  # reads what the rules it correlates read: no field set of its own
            continue
        fields.update(f for name in names for f in _detection_fields(r.detection.detections[name]))
    return out, frozenset() if None in fields else frozenset(f for f in fields if f)


def _detection_fields(detection: Any) -> list[str | None]:
    """The field of every item under ``detection`` (None for a keyword item); a field mapped to several
    fields is a nested detection."""
    from sigma.rule import SigmaDetection

    out: list[str | None] = []
    for item in detection.detection_items:
        out.extend(_detection_fields(item) if isinstance(item, SigmaDetection) else [item.field])
    return out


@cache
def ecs_field_map() -> dict[str, str]:
    """Sysmon/Windows field name → the ECS field pySigma's ``ecs_windows`` pipeline maps it to (its generic
    mapping plus the process-creation ones, e.g. ``CommandLine``); a name it does not map stays under
    ``winlog.event_data.`` as that pipeline's prefix transformation leaves it."""
    from sigma.pipelines.elasticsearch.windows import ecs_windows
    from sigma.processing.transformations import FieldMappingTransformation

    out: dict[str, str] = {}
    for item in ecs_windows().items:
        t = item.transformation
        generic = item.identifier == "ecs_windows_field_mapping"
        if isinstance(t, FieldMappingTransformation) and (generic or str(item.identifier).endswith("process_creation")):
            for name, target in t.mapping.items():
                out.setdefault(str(name), target if isinstance(target, str) else str(target[0]))
    return out


def siem_field(name: str, mapping: FieldMapping) -> str:
    """Where an index under ``mapping`` keeps the Sysmon/Windows field ``name`` (the Sigma path's mapping)."""
    if mapping is FieldMapping.SYSMON:
        return name
    return ecs_field_map().get(name) or f"winlog.event_data.{name}"
