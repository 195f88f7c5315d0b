"""The pictures of the decision documents (matplotlib, Agg back end, PNG bytes): the ATT&CK matrix
coloured by detection score, the tactic heatmap, the trend over dates and the risk matrix.

Every picture is drawn from numbers the brief already holds (``BriefingFacts``: the scores of the newest
assessment, the risks awaiting a decision) or from the assessment trend (``scoring.trend``, the numbers
trend.csv holds) — nothing is recomputed here. A chart with nothing to show is not drawn: the caller
says so in words instead of showing an empty frame.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dcoflow.models.assessment import DETECTION_MAX, DETECTION_MIN
from dcoflow.models.navigator import DETECTION_COLORS, interpolate
from dcoflow.tasks.reporting.briefing import RiskFacts, TechniqueFacts

LEVEL_LABELS = ["−1 none", "0 forensics", "1 basic", "2 fair", "3 good", "4 very good", "5 excellent"]


@dataclass(slots=True, frozen=True)
class Chart:
    key: str
    caption: str
    png: bytes


@dataclass(slots=True, frozen=True)
class TrendSample:
    """One assessment run of one DCO (``scoring.TrendPoint``'s numbers)."""

    at: datetime
    techniques: int
    mean_detection: float
    mean_visibility: float
    detected: int


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9, "svg.fonttype": "none"})
    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight", metadata={"Software": "dcoflow"})
    _pyplot().close(fig)
    return buf.getvalue()


def detection_color(score: float) -> str:
    """As the coverage Navigator layer colours a cell (models/navigator.py, −1..5)."""
    return interpolate(DETECTION_COLORS, DETECTION_MIN, DETECTION_MAX, round(score))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def matrix_columns(techniques: Sequence[TechniqueFacts], rank: Callable[[str], int]
                   ) -> list[tuple[str, list[TechniqueFacts]]]:
    """Tactics in kill-chain order, each with its techniques (worst detection first, then id), as the
    Navigator lays out a layer: a technique with two tactics appears in both columns."""
    by_tactic: dict[str, list[TechniqueFacts]] = {}
    for t in techniques:
        for tactic in t.tactics or ("(no tactic)",):
            by_tactic.setdefault(tactic, []).append(t)
    return [(tactic, sorted(items, key=lambda t: (t.detection, t.technique_id)))
            for tactic, items in sorted(by_tactic.items(), key=lambda kv: (rank(kv[0]), kv[0]))]


def attack_matrix(techniques: Sequence[TechniqueFacts], rank: Callable[[str], int], *,
                  max_rows: int = 24) -> Chart | None:
    """Tactics as columns, the DCO's techniques as cells coloured by detection score (−1..5). With many
    tactics the cells hold the ATT&CK id only, so the text stays legible when the matrix fills a page;
    the names are in the brief's tables."""
    columns = matrix_columns(techniques, rank)
    if not columns:
        return None
    plt = _pyplot()
    rows = min(max(len(items) for _, items in columns), max_rows)
    named = len(columns) <= 8
    col_w, row_h = (1.45, 0.36) if named else (0.78, 0.24)
    fig, ax = plt.subplots(figsize=(max(6.0, col_w * len(columns)), 1.2 + row_h * (rows + 1.6)))
    ax.set_xlim(0, len(columns))
    ax.set_ylim(rows + 1.6, 0)
    ax.axis("off")
    for c, (tactic, items) in enumerate(columns):
        title = tactic.replace("-", " ").title()
        title = title if named else title.replace(" ", "\n", 1)
        ax.text(c + 0.5, 0.75, f"{title}\n({len(items)})", ha="center", va="center", fontsize=5.8 if not named else 7.5,
                fontweight="bold")
        shown = items[: rows if len(items) <= rows else rows - 1]
        for r, t in enumerate(shown, start=2):
            ax.add_patch(plt.Rectangle((c + 0.03, r - 0.4 + 0.04), 0.94, 0.92, facecolor=detection_color(t.detection),
                                       edgecolor="#666666", linewidth=0.4))
            if named:
                ax.text(c + 0.06, r - 0.02, t.technique_id, fontsize=5.8, va="center", fontweight="bold")
                ax.text(c + 0.06, r + 0.32, _short(t.name, 24), fontsize=5.3, va="center")
            else:
                ax.text(c + 0.5, r + 0.1, t.technique_id, fontsize=6.2, ha="center", va="center")
        if len(shown) < len(items):
            ax.text(c + 0.5, rows + 1.1, f"+ {len(items) - len(shown)} more", ha="center", va="center", fontsize=6.5)
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=detection_color(v), edgecolor="#666666")
               for v in range(DETECTION_MIN, DETECTION_MAX + 1)]
    fig.legend(handles, LEVEL_LABELS, loc="lower center", ncol=7, fontsize=7, frameon=False,
               title="detection score (DeTT&CT scale)", title_fontsize=7.5, bbox_to_anchor=(0.5, -0.04))
    ax.set_title(f"ATT&CK matrix of the DCO's {len(techniques)} techniques, coloured by detection", fontsize=10)
    return Chart("matrix", "The DCO's techniques by tactic (as the ATT&CK Navigator draws them), coloured by "
                           "detection score: red nothing would alert, green detected well.", _png(fig))


def tactic_heatmap(techniques: Sequence[TechniqueFacts], rank: Callable[[str], int]) -> Chart | None:
    """Tactics (rows) × detection level (columns): how many techniques sit in each cell."""
    columns = matrix_columns(techniques, rank)
    if not columns:
        return None
    plt = _pyplot()
    levels = list(range(DETECTION_MIN, DETECTION_MAX + 1))
    counts = [[sum(1 for t in items if round(t.detection) == lv) for lv in levels] for _, items in columns]
    fig, ax = plt.subplots(figsize=(7.2, 0.6 + 0.32 * len(columns)))
    top = max(max(row) for row in counts) or 1
    ax.imshow(counts, cmap="Blues", vmin=0, vmax=top, aspect="auto")
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=8, color="white" if n > top / 2 else "black")
    ax.set_yticks(range(len(columns)), [f"{tactic} ({len(items)})" for tactic, items in columns], fontsize=8)
    ax.set_xticks(range(len(levels)), LEVEL_LABELS, fontsize=7.5, rotation=30, ha="right")
    ax.set_xlabel("detection score")
    ax.set_title("Techniques per tactic and detection score", fontsize=10)
    return Chart("heatmap", "How many of the DCO's techniques reach each detection score, per tactic "
                            "(number of techniques in brackets).", _png(fig))


def trend_chart(samples: Sequence[TrendSample]) -> Chart | None:
    """Mean detection and visibility per assessment run on a real time axis; the technique count of
    each run is printed, so a change of the technique set is seen, not hidden."""
    if not samples:
        return None
    plt = _pyplot()
    import matplotlib.dates

    mdates: Any = matplotlib.dates  # untyped in places

    xs = [s.at for s in samples]
    fig, ax = plt.subplots(figsize=(7.2, 3.0))
    ax.plot(xs, [s.mean_detection for s in samples], marker="o", color="#0072b2", label="mean detection (−1..5)")
    ax.plot(xs, [s.mean_visibility for s in samples], marker="s", linestyle="--", color="#e69f00",
            label="mean visibility (0..4)")
    for s in samples:
        ax.annotate(f"{s.detected}/{s.techniques} detected", (s.at, s.mean_detection), textcoords="offset points",
                    xytext=(0, 8), ha="center", fontsize=7)
    ax.set_ylim(DETECTION_MIN - 0.2, DETECTION_MAX + 0.2)
    ax.grid(True, color="#eeeeee")
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if len(samples) == 1:  # one run: a day either side, so the axis still reads as dates
        ax.set_xlim(samples[0].at - timedelta(days=1), samples[0].at + timedelta(days=1))
    ax.legend(loc="lower right", fontsize=7.5)
    sets = sorted({s.techniques for s in samples})
    note = f"same technique set ({sets[0]} techniques)" if len(sets) == 1 else \
        f"the technique set changed between runs ({', '.join(map(str, sets))} techniques)"
    ax.set_title(f"Assessment trend — {note}", fontsize=10)
    return Chart("trend", f"Mean detection and visibility at each assessment ({len(samples)} run(s)), on a "
                          f"time axis; {note}.", _png(fig))


def risk_matrix(risks: Sequence[RiskFacts]) -> Chart | None:
    """Likelihood × impact (1–5 each), cells coloured by score band, the risks placed in their cell."""
    if not risks:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    for likelihood in range(1, 6):
        for impact in range(1, 6):
            score = likelihood * impact
            color = "#e5484d" if score >= 16 else "#ffb224" if score >= 8 else "#46a758"
            ax.add_patch(plt.Rectangle((impact - 0.5, likelihood - 0.5), 1, 1, facecolor=color, alpha=0.55,
                                       edgecolor="white", linewidth=2))
    cells: dict[tuple[int, int], list[str]] = {}
    for n, r in enumerate(risks, start=1):
        cells.setdefault((r.impact, r.likelihood), []).append(f"R{n}")
    for (impact, likelihood), labels in cells.items():
        shown = labels[:6]
        lines = [" ".join(shown[i:i + 3]) for i in range(0, len(shown), 3)]
        if len(labels) > 6:
            lines.append(f"+{len(labels) - 6} more")
        ax.text(impact, likelihood, "\n".join(lines), ha="center", va="center", fontsize=7, fontweight="bold")
    ax.set_xlim(0.5, 5.5)
    ax.set_ylim(0.5, 5.5)
    ax.set_xticks(range(1, 6))
    ax.set_yticks(range(1, 6))
    ax.set_xlabel("impact")
    ax.set_ylabel("likelihood")
    ax.set_aspect("equal")
    ax.set_title("Risks awaiting a decision", fontsize=10)
    return Chart("risks", "Risks awaiting a decision by likelihood and impact (R1, R2 … as numbered in the list).",
                 _png(fig))


def brief_charts(techniques: Sequence[TechniqueFacts], risks: Sequence[RiskFacts], samples: Sequence[TrendSample],
                 rank: Callable[[str], int]) -> list[Chart]:
    """Every chart there is something to draw for, in reading order."""
    drawn = [attack_matrix(techniques, rank), tactic_heatmap(techniques, rank), trend_chart(samples),
             risk_matrix(risks)]
    return [c for c in drawn if c is not None]
