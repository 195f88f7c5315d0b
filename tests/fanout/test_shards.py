"""Shards: how telemetry is cut, and how shard results add up in one hunt run (re-recording replaces)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.hunt_run import HuntRun, hunt_run_id
from dcoflow.models.hunting import HuntSelection
from dcoflow.models.operation import DcoSpec, DcoState
from dcoflow.models.repository.operation import create_operation, transition
from dcoflow.models.shards import plan_shards
from dcoflow.tasks.conduct.hunt_record import record_hunt
from dcoflow.tasks.conduct.local_hunt import run_local_hunt

DATA = "security-datasets/data/atomic/windows/credential_access/host"
RULES = "sigma/rules/windows/process_creation"


def test_shards_cover_every_file_once_and_weigh_alike() -> None:
    files = [(f"f{i}", size) for i, size in enumerate([90, 70, 50, 40, 30, 20, 10, 10, 5])]
    shards = plan_shards([*files, files[0]], 3)  # a file named twice is hunted once
    assert sorted(f for s in shards for f in s.files) == sorted(f for f, _ in files)
    sizes = [s.size for s in shards]
    assert max(sizes) - min(sizes) <= 20 and sum(sizes) == 325
    assert [s.key for s in plan_shards(list(reversed(files)), 3)] == [s.key for s in shards]  # same cut, same keys
    assert len(plan_shards(files[:2], 5)) == 2 and all(s.files for s in plan_shards(files[:2], 5))
    assert shards[0].done_in({f: 1 for f in shards[0].files}) and not shards[0].done_in({})
    with pytest.raises(ValueError):
        plan_shards(files, 0)


def test_shard_results_add_up_and_a_retried_shard_replaces_itself(settings: Settings, shared_dir: Path) -> None:
    files = sorted((shared_dir / DATA).glob("*.zip"))[:4]
    rules = shared_dir / RULES
    sel = HuntSelection(techniques=["T1003"])
    whole = run_local_hunt(rules, files, sel, workers=1)
    with session_scope() as s:
        op = create_operation(s, DcoSpec.model_validate({"name": "Shard Op", "objective": "hunt in shards",
                                                         "type": "threat-hunt",
                                                         "threat_profile": {"techniques": ["T1003"]}}), "t")
        for state in (DcoState.PLANNED, DcoState.APPROVED):
            transition(s, op, state, "t", "test")
        dco = op.id
    shards = plan_shards([(str(f), f.stat().st_size) for f in files], 2)
    for shard in [*shards, shards[0]]:  # the first shard recorded again, as after a lost worker
        out = run_local_hunt(rules, [Path(f) for f in shard.files], sel, workers=1)
        out.source = "fanout:test"
        with session_scope() as s:
            record_hunt(s, dco, out, hunt_key="k", catalog=None, complete=False, shard=shard.key)
    with session_scope() as s:
        run = s.get(HuntRun, hunt_run_id(dco, "k"))
        assert run is not None
        assert run.events_read == whole.events_read
        assert {k: int(v["hits"]) for k, v in run.rule_stats.items() if v["hits"]} == {
            m.rule.rule_id: m.count for m in whole.matches}
        assert run.hits == sum(m.count for m in whole.matches) > 0
