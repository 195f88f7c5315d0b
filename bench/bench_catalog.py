"""ATT&CK catalog speed and memory against mitreattack-python's MitreAttackData, same bundle, same run.

Each figure is taken in a fresh subprocess: wall time of the load call, RSS growth over the
load (/proc/self/status VmRSS), and the process's own import time. Targets: cached load ≤ 0.1 s
and ≤ 50 MB, cold build ≤ 1 s, every query ≤ 1 ms.

    .venv/bin/python bench/bench_catalog.py [bundle.json.gz]
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "attack" / "enterprise-attack-18.1.json.gz"

PRELUDE = r"""
import json, sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
t0 = time.perf_counter()
"""

OURS = PRELUDE + r"""
from dcoflow.connectors.attack import load_catalog
t1 = time.perf_counter(); r1 = rss()
cat = load_catalog(sys.argv[1])
t2 = time.perf_counter(); r2 = rss()
queries = {
    "technique('T1059.001')": lambda: cat.technique("T1059.001"),
    "group('Cozy Bear')": lambda: cat.group("Cozy Bear"),
    "group_techniques('G0016')": lambda: cat.group_techniques("G0016"),
    "technique.mitigations": lambda: cat.technique("T1059.001").mitigations,
    "technique.data_components": lambda: cat.technique("T1059.001").data_components,
    "resolve('T1086')": lambda: cat.resolve("T1086"),
    "resolve_tactic('execution')": lambda: cat.resolve_tactic("execution"),
    "search('powershell')": lambda: cat.search("powershell"),
    "techniques (listing)": lambda: cat.techniques,
}
q = {}
for name, fn in queries.items():
    fn()
    n = 200
    s = time.perf_counter()
    for _ in range(n):
        fn()
    q[name] = (time.perf_counter() - s) / n
t3 = time.perf_counter(); cat.technique("T1059.001").description; desc = time.perf_counter() - t3
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "rss_delta": r2 - r1, "rss": r2, "queries": q,
                  "first_description": desc, "counts": cat.counts()}))
"""

THEIRS = PRELUDE + r"""
from mitreattack.stix20 import MitreAttackData
t1 = time.perf_counter(); r1 = rss()
m = MitreAttackData(sys.argv[1])
t2 = time.perf_counter(); r2 = rss()
g = m.get_object_by_attack_id("G0016", "intrusion-set")
ps = m.get_object_by_attack_id("T1059.001", "attack-pattern")
queries = {
    "technique('T1059.001')": lambda: m.get_object_by_attack_id("T1059.001", "attack-pattern"),
    "group('Cozy Bear')": lambda: m.get_groups_by_alias("Cozy Bear"),
    "group_techniques('G0016')": lambda: m.get_techniques_used_by_group(g.id),
    "technique.mitigations": lambda: m.get_mitigations_mitigating_technique(ps.id),
}
q = {}
for name, fn in queries.items():
    fn()
    n = 5
    s = time.perf_counter()
    for _ in range(n):
        fn()
    q[name] = (time.perf_counter() - s) / n
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "rss_delta": r2 - r1, "rss": r2, "queries": q}))
"""


def run(code: str, arg: str, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code, arg], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    import os

    bundle = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DCO_CACHE_DIR": str(Path(tmp) / "cache"), "PYTHONPATH": str(ROOT)}
        cold = run(OURS, str(bundle), env)
        warm = run(OURS, str(bundle), env)
        plain = Path(tmp) / "bundle.json"
        plain.write_bytes(gzip.decompress(bundle.read_bytes()))
        theirs = run(THEIRS, str(plain), env)

    def ms(x: object) -> str:
        return f"{float(x) * 1000:9.3f} ms"  # type: ignore[arg-type]

    print(f"bundle: {bundle.name}   objects indexed: {warm['counts']}")
    print(f"{'':38}{'dcoflow':>14}{'mitreattack':>16}{'ratio':>10}")
    rows = [
        ("load, cached (fresh process)", warm["load"], theirs["load"]),
        ("load, cold build from .gz", cold["load"], theirs["load"]),
        ("import of the loader module", warm["import"], theirs["import"]),
    ]
    for label, a, b in rows:
        print(f"{label:38}{ms(a):>14}{ms(b):>16}{float(b) / float(a):>9.0f}x")  # type: ignore[arg-type]
    print(f"{'RSS growth over the load, cached':38}{warm['rss_delta']:>11.1f} MB{theirs['rss_delta']:>13.1f} MB"
          f"{float(theirs['rss_delta']) / float(warm['rss_delta']):>9.1f}x")  # type: ignore[arg-type]
    print(f"{'process RSS after the load, cached':38}{warm['rss']:>11.1f} MB{theirs['rss']:>13.1f} MB")
    print(f"{'first description (lazy file read)':38}{ms(warm['first_description']):>14}")
    ours_q: dict[str, float] = warm["queries"]  # type: ignore[assignment]
    their_q: dict[str, float] = theirs["queries"]  # type: ignore[assignment]
    for name, t in ours_q.items():
        other = their_q.get(name)
        ratio = f"{other / t:9.3g}x" if other else ""
        print(f"  query {name:32}{ms(t):>14}{ms(other) if other else '':>16}{ratio}")
    checks = {
        "cached load <= 0.1 s": float(warm["load"]) <= 0.1,  # type: ignore[arg-type]
        "cached RSS growth <= 50 MB": float(warm["rss_delta"]) <= 50,  # type: ignore[arg-type]
        "cold build <= 1 s": float(cold["load"]) <= 1.0,  # type: ignore[arg-type]
        "every query <= 1 ms": max(ours_q.values()) <= 0.001,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
