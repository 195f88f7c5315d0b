"""Assessment speed: 500 techniques × 100,000 evidence records must score in ≤ 5 s.

Times (1) reading 100,000 STIX evidence objects into Evidence (evidence_from_stix: hunt hits,
opinions, emulation outcomes with corrected versions), (2) scoring all techniques and ranking gaps
(grouped once), against the peer a first version would write: filtering the whole evidence list
once per technique before scoring it.

Run: .venv/bin/python bench/bench_assess.py
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dcoflow.models.assessment import Relevance, assess_evidence, assess_technique, rank_gaps
from dcoflow.models.stix.rows import stix_time
from dcoflow.tasks.assess.evidence import evidence_from_stix

TECHNIQUES = 500
RECORDS = 100_000
BUDGET_S = 5.0
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def stix_evidence(rng: random.Random) -> list[dict[str, Any]]:
    tids = [f"T{1000 + i}" if i % 3 else f"T{1000 + i}.001" for i in range(TECHNIQUES)]
    objs: list[dict[str, Any]] = []
    hits: list[dict[str, Any]] = []
    while len(objs) < RECORDS:
        tid = rng.choice(tids)
        when = stix_time(NOW - timedelta(days=rng.uniform(0, 400)))
        roll = rng.random()
        if roll < 0.6:
            hit = {"type": "sighting", "id": f"sighting--h{len(objs)}", "created": when, "modified": when,
                   "count": 1, "x_dco_rule_id": f"r{rng.randrange(900)}", "x_dco_technique_ids": [tid],
                   "x_dco_exercise": rng.random() < 0.1, "x_dco_hunt_run": "run", "x_dco_id": "bench"}
            hits.append(hit)
            objs.append(hit)
        elif roll < 0.8 and hits:
            target = rng.choice(hits)
            objs.append({"type": "opinion", "id": f"opinion--o{len(objs)}", "created": when, "modified": when,
                         "object_refs": [target["id"]], "x_dco_id": "bench",
                         "x_dco_verdict": rng.choice(["true-positive", "false-positive", "benign"])})
        else:
            oid = f"sighting--e{len(objs)}"
            for version in range(1 + (rng.random() < 0.2)):  # a fifth corrected once
                mod = stix_time(NOW - timedelta(days=rng.uniform(0, 400)) + timedelta(minutes=version))
                objs.append({"type": "sighting", "id": oid, "created": when, "modified": mod, "last_seen": when,
                             "x_dco_outcome": rng.choice(["prevented", "alerted", "logged", "none"]),
                             "x_dco_technique_id": tid, "x_dco_step_id": f"s{len(objs)}", "x_dco_id": "bench",
                             "where_sighted_refs": ["identity--edr"]})
    return objs[:RECORDS]


def main() -> int:
    rng = random.Random(7)
    objects = stix_evidence(rng)

    t0 = time.perf_counter()
    evset = evidence_from_stix(objects)
    t_read = time.perf_counter() - t0
    evidence = evset.evidence

    t0 = time.perf_counter()
    scores = assess_evidence(evidence, NOW)
    relevance = {tid: Relevance(groups=("G",) * (i % 4)) for i, tid in enumerate(scores)}
    gaps = rank_gaps(scores, relevance)
    t_score = time.perf_counter() - t0

    t0 = time.perf_counter()
    naive = {tid: assess_technique(tid, [e for e in evidence if e.technique_id == tid], NOW) for tid in scores}
    t_naive = time.perf_counter() - t0
    assert all(naive[t].detection.value == scores[t].detection.value for t in scores)

    total = t_read + t_score
    print(f"objects: {len(objects):,}  evidence records: {len(evidence):,}  techniques: {len(scores)}  "
          f"gaps: {len(gaps)}")
    print(f"read STIX → evidence:            {t_read:6.2f} s")
    print(f"score + rank (grouped once):     {t_score:6.2f} s")
    print(f"total:                           {total:6.2f} s   (budget {BUDGET_S:.1f} s)")
    print(f"peer: filter per technique:      {t_naive:6.2f} s   ({t_naive / max(t_score, 1e-9):.1f}× slower)")
    return 0 if total <= BUDGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
