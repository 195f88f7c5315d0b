"""The demo DCO shipped with dcoflow (`dco demo` runs its whole lifecycle): the operation file,
the purple team's recorded outcomes and the hunter's triage verdicts."""

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
