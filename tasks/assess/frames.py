"""The assessment's tables as pandas DataFrames, built from the stored score log.

* ``coverage_frame`` — one row per technique (names, tactics, scores, evidence counts, gap rank),
  in gap-rank order; the CSV, the XLSX and the CLI's ``--json`` rows all come from it.
* ``tactic_table`` — techniques × tactic pivot: how many techniques sit at each detection level per
  tactic, with the tactic's mean and minimum scores; the heatmap draws it.
* ``trend_frame`` / ``trend_pivot`` — one row per DCO per assessment run, and the same pivoted to
  one column per DCO over time; the trend CSV and chart read them.

pandas 3: text columns are the ``str`` dtype and copy-on-write is always on, so columns are set on
the frame that owns them (``assign``/``loc``), never through chained indexing. ``to_dict`` gives
plain Python values (``None`` for a missing nullable integer), which is what the JSON output needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd

from dcoflow.models.assessment import DETECTION_MAX, DETECTION_MIN
from dcoflow.models.assessment_rows import TechniqueScore
from dcoflow.models.attack import Catalog
from dcoflow.models.repository.assessment import TrendPoint

#: The record every ``dco assess scores/gaps --json`` row has (as before the frames, plus the gap's reason and
#: the hunt coverage).
COLUMNS = ["technique_id", "name", "tactics", "visibility", "detection", "priority", "relevance", "evidence",
           "assessed_at", "deciding_evidence", "gap_reason", "hunt_coverage"]
#: The coverage table's columns (CSV and XLSX): the record plus the gap rank and its reason, the hit counts
#: and the hunt coverage beside the scores ("hunted with N rules over …, nothing found").
TABLE_COLUMNS = ["technique_id", "name", "tactics", "visibility", "detection", "priority", "relevance", "gap_rank",
                 "gap_reason", "evidence", "real_hits", "exercise_hits", "hunt_coverage", "assessed_at",
                 "deciding_evidence"]
_DTYPES = {"technique_id": "str", "name": "str", "tactics": "str", "visibility": "float64", "detection": "float64",
           "priority": "float64", "relevance": "float64", "gap_rank": "Int64", "evidence": "int64",
           "real_hits": "int64", "exercise_hits": "int64", "assessed_at": "str", "deciding_evidence": "str",
           "gap_reason": "str", "hunt_coverage": "str"}
LEVELS = list(range(DETECTION_MIN, DETECTION_MAX + 1))
UNKNOWN_TACTIC = "(unknown)"
TACTIC_STATS = ["techniques", "mean_visibility", "min_visibility", "mean_detection", "min_detection"]
TREND_COLUMNS = ["dco_id", "assessed_at", "techniques", "mean_visibility", "mean_detection", "detected"]


def coverage_frame(scores: Sequence[TechniqueScore], catalog: Catalog) -> pd.DataFrame:
    """One row per technique of one assessment run, gaps first by rank, then the rest by id."""
    records = []
    for s in scores:
        tech = catalog.get_technique(s.technique_id)
        deciding = [line[3:] for line in s.explanation.get("detection", []) if line.startswith("=> ")]
        records.append({
            "technique_id": s.technique_id,
            "name": tech.name if tech else "(not in this ATT&CK release)",
            "tactics": ", ".join(tech.tactics) if tech else "",
            "visibility": s.visibility, "detection": s.detection, "priority": s.priority, "relevance": s.relevance,
            "gap_rank": s.explanation.get("gap_rank"), "gap_reason": s.explanation.get("gap_reason") or "",
            "hunt_coverage": (s.explanation.get("hunt_coverage") or {}).get("text") or "",
            "evidence": s.evidence_count, "real_hits": s.explanation.get("real_hits", 0),
            "exercise_hits": s.explanation.get("exercise_hits", 0),
            "assessed_at": s.assessed_at.isoformat(), "deciding_evidence": deciding[0] if deciding else "",
        })
    frame = pd.DataFrame.from_records(records, columns=TABLE_COLUMNS).astype(_DTYPES)
    gaps = frame["priority"] > 0
    if frame.loc[gaps, "gap_rank"].isna().any():
        frame = frame.assign(gap_rank=_rank_by_priority(frame))
    return frame.sort_values(["gap_rank", "technique_id"], na_position="last", kind="stable", ignore_index=True)


def _rank_by_priority(frame: pd.DataFrame) -> pd.Series:
    """Ranks for a run logged before the rank was stored: priority, then id (the addressable tie-break is lost)."""
    ordered = frame.loc[frame["priority"] > 0].sort_values(["priority", "technique_id"], ascending=[False, True],
                                                          kind="stable")
    ranks = pd.Series(range(1, len(ordered) + 1), index=ordered.index, dtype="Int64")
    return ranks.reindex(frame.index)


def coverage_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as the JSON records the CLI and the Prefect artifacts show (``COLUMNS``)."""
    records: list[dict[str, Any]] = frame[COLUMNS].to_dict("records")
    return records


def tactic_table(scores: Sequence[TechniqueScore], catalog: Catalog) -> pd.DataFrame:
    """Tactics (kill-chain order, then tactics the release does not list, sorted) × detection level.

    Columns: one per detection level (-1..5: how many techniques of the tactic round to it), then
    ``TACTIC_STATS``. A technique counts once under each of its tactics; only tactics with a
    technique appear.
    """
    long = pd.DataFrame.from_records(
        [{"technique_id": s.technique_id, "tactic": list(tech.tactics) if (tech := catalog.get_technique(
            s.technique_id)) and tech.tactics else [UNKNOWN_TACTIC], "visibility": s.visibility,
          "detection": s.detection} for s in scores],
        columns=["technique_id", "tactic", "visibility", "detection"],
    ).explode("tactic", ignore_index=True)
    long = long.astype({"technique_id": "str", "tactic": "str", "visibility": "float64", "detection": "float64"})
    # round half to even, as the Navigator layers and the old per-cell count did (Python's round)
    long = long.assign(level=long["detection"].round().astype("int64"))
    counts = long.pivot_table(index="tactic", columns="level", values="technique_id", aggfunc="count",
                              fill_value=0).reindex(columns=LEVELS, fill_value=0)
    stats = long.groupby("tactic").agg(
        techniques=("technique_id", "nunique"),
        mean_visibility=("visibility", "mean"), min_visibility=("visibility", "min"),
        mean_detection=("detection", "mean"), min_detection=("detection", "min"),
    )
    table = counts.join(stats).astype({lv: "int64" for lv in LEVELS} | {"techniques": "int64"})
    known = [t.shortname for t in catalog.tactics]
    order = [t for t in known if t in table.index] + sorted(t for t in table.index if t not in known)
    table = table.reindex(order)
    table.index.name = "tactic"
    table.columns.name = None
    return table.round({c: 2 for c in TACTIC_STATS if c != "techniques"})


def trend_frame(points: Sequence[TrendPoint]) -> pd.DataFrame:
    """One row per DCO per assessment run, oldest first, then by DCO (``assessed_at`` as UTC datetimes)."""
    frame = pd.DataFrame.from_records([asdict(p) for p in points], columns=TREND_COLUMNS)
    frame = frame.astype({"dco_id": "str", "techniques": "int64", "mean_visibility": "float64",
                          "mean_detection": "float64", "detected": "int64"})
    frame = frame.assign(assessed_at=pd.to_datetime(frame["assessed_at"], utc=True))
    return frame.sort_values(["assessed_at", "dco_id"], kind="stable", ignore_index=True)


def trend_pivot(frame: pd.DataFrame, measure: str) -> pd.DataFrame:
    """``measure`` per assessment moment (rows, oldest first) and DCO (columns, sorted); NaN where a
    DCO was not assessed at that moment."""
    pivot = frame.pivot(index="assessed_at", columns="dco_id", values=measure)
    return pivot.sort_index().reindex(columns=sorted(pivot.columns))


def trend_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The trend rows as written to CSV: ``assessed_at`` in ISO 8601 like the JSON output."""
    return frame.assign(assessed_at=[ts.isoformat() for ts in frame["assessed_at"]])
