"""The demo DCO shipped with dcoflow (`dco demo` runs its whole lifecycle)."""

from pathlib import Path

DEMO_OPERATION = Path(__file__).with_name("apt29-purple-team.yaml")
