"""The demo DCO shipped with dcoflow (`dco demo` runs its whole lifecycle): the operation file,
the purple team's recorded outcomes and the hunter's triage verdicts."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dcoflow.models.strict_yaml import load_yaml

HERE = Path(__file__).parent
DEMO_OPERATION = HERE / "apt29-purple-team.yaml"
DEMO_OUTCOMES = HERE / "outcomes.yaml"
DEMO_TRIAGE = HERE / "triage.yaml"


def demo_answers() -> tuple[dict[str, Any], dict[str, str]]:
    """(emulation outcome answers, triage verdicts) the demo gives instead of pausing for people."""
    outcomes = load_yaml(DEMO_OUTCOMES.read_bytes())
    verdicts = load_yaml(DEMO_TRIAGE.read_bytes())
    return outcomes, {str(k): str(v) for k, v in verdicts.items()}


def demo_window(now: datetime | None = None) -> dict[str, str]:
    """The demo's conduct window: from the start of ``now``'s day (UTC) for twelve days, ending 18:00."""
    day = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = day + timedelta(days=11, hours=18)
    return {"start": day.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}


def write_demo_operation(folder: Path, now: datetime | None = None) -> Path:
    """The demo operation file with its window, written once into ``folder``: a re-run of the demo in the
    same folder resumes the same DCO with the same window (a DCO's spec cannot change once approved)."""
    import yaml

    path = folder / "operation.yaml"
    if not path.exists():
        data = load_yaml(DEMO_OPERATION.read_bytes())
        data["window"] = demo_window(now)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        tmp.replace(path)
    return path
