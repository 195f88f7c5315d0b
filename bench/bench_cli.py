"""Command-line start-up: `dco --help` and `dco attack technique T1059.001` in fresh processes, warm cache,
against mitreattack-python answering the same question in a fresh process, same run.

Targets (issue 10): `dco --help` ≤ 0.5 s, `dco attack technique …` ≤ 0.3 s and ≥ 20× faster than the peer.
Each figure is a fresh process started from this interpreter's venv (the `dco` console script); wall time is
the median of the rounds, CPU is user+sys of the child. On a loaded machine wall time grows with the load and
CPU time much less, so both are printed, with the load average. "Warm" means the catalog cache and Python's
bytecode cache both exist, as after any first use of an installed dco: a PYTHONDONTWRITEBYTECODE inherited from
the shell is dropped for the children (with it, every start recompiles dcoflow's modules, ~0.07 s). Ends with
the largest `-X importtime` entries of the technique command.

    .venv/bin/python bench/bench_cli.py [--rounds 5] [--peer-rounds 2] [bundle.json.gz]
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DCO_TEST_SHARED", ROOT.parent / "shared"))  # as the tests find ../shared
DEFAULT = SHARED / "attack" / "enterprise-attack-18.1.json.gz"
TECHNIQUE = "T1059.001"

# What `dco attack technique` shows: name, tactics, platforms, parent, mitigations, detection, groups.
PEER = r"""
import sys
from mitreattack.stix20 import MitreAttackData
m = MitreAttackData(sys.argv[1])
t = m.get_object_by_attack_id(sys.argv[2], "attack-pattern")
parent = m.get_parent_technique_of_subtechnique(t.id)
print(sys.argv[2], t.name)
print("tactics", [p.phase_name for p in t.kill_chain_phases])
print("platforms", t.x_mitre_platforms)
print("parent", [m.get_attack_id(p["object"].id) for p in parent])
print("mitigations", sorted(m.get_attack_id(x["object"].id) for x in m.get_mitigations_mitigating_technique(t.id)))
print("detection strategies", sorted(m.get_attack_id(x["object"].id)
                                     for x in m.get_detection_strategies_detecting_technique(t.id)))
print("groups", sorted(m.get_attack_id(x["object"].id) for x in m.get_groups_using_technique(t.id)))
"""


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, child CPU s, stdout) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out.stdout


def importtime_top(argv: list[str], env: dict[str, str], n: int = 12) -> list[tuple[int, int, str]]:
    """The `-X importtime` entries with the largest cumulative time: (cumulative µs, self µs, module)."""
    code = "import sys; sys.argv = ['dco', *sys.argv[1:]]; from dcoflow.flows.cli import main; main()"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *argv], env=env, capture_output=True,
                          text=True, check=True, cwd=tempfile.gettempdir())
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            self_us, cum_us, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            rows.append((int(cum_us), int(self_us), name))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("bundle", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per dco command")
    parser.add_argument("--peer-rounds", type=int, default=2, help="fresh processes for mitreattack-python")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    dco = Path(sys.executable).parent / "dco"
    if not dco.exists():
        sys.exit(f"no dco console script beside {sys.executable}; pip install -e . first")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DCO_CACHE_DIR": str(Path(tmp) / "cache"), "DCO_ATTACK_SOURCE": str(args.bundle),
               "COLUMNS": "120"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        plain = Path(tmp) / "bundle.json"  # the peer reads plain JSON; decompressing is not counted against it
        plain.write_bytes(gzip.decompress(args.bundle.read_bytes()))
        help_argv = [str(dco), "--help"]
        tech_argv = [str(dco), "attack", "technique", TECHNIQUE]
        peer_argv = [sys.executable, "-c", PEER, str(plain), TECHNIQUE]
        timed(tech_argv, env)  # warm the catalog and bytecode caches (built once, as after any first use)
        timed(help_argv, env)
        ours_help, ours_tech, peer = [], [], []
        for i in range(max(args.rounds, args.peer_rounds)):  # interleaved, so load changes hit all alike
            if i < args.rounds:
                ours_help.append(timed(help_argv, env))
                ours_tech.append(timed(tech_argv, env))
            if i < args.peer_rounds:
                peer.append(timed(peer_argv, env))
        assert f"{TECHNIQUE} PowerShell" in ours_tech[0][2] and f"{TECHNIQUE} PowerShell" in peer[0][2]
        top = importtime_top(["attack", "technique", TECHNIQUE], env)

    def med(runs: list[tuple[float, float, str]], k: int) -> float:
        return statistics.median(r[k] for r in runs)

    print(f"bundle: {args.bundle.name}; {args.rounds} rounds of dco, {args.peer_rounds} of the peer; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs")
    print(f"{'fresh process, warm cache':44}{'wall (median)':>14}{'CPU (median)':>14}")
    rows = [("dco --help", ours_help), (f"dco attack technique {TECHNIQUE}", ours_tech),
            ("mitreattack-python, same question", peer)]
    for label, runs in rows:
        print(f"{label:44}{med(runs, 0):>12.3f} s{med(runs, 1):>12.3f} s")
    wall_ratio, cpu_ratio = med(peer, 0) / med(ours_tech, 0), med(peer, 1) / med(ours_tech, 1)
    print(f"{'ratio peer / dco attack technique':44}{wall_ratio:>13.1f}x{cpu_ratio:>13.1f}x")
    print(f"\nlargest -X importtime entries of `dco attack technique {TECHNIQUE}` (cumulative, self):")
    for cum, own, name in top:
        print(f"  {cum / 1000:8.1f} ms {own / 1000:8.1f} ms  {name}")
    checks = {
        "dco --help <= 0.5 s": med(ours_help, 0) <= 0.5,
        "dco attack technique <= 0.3 s": med(ours_tech, 0) <= 0.3,
        "dco attack technique >= 20x faster than mitreattack-python": wall_ratio >= 20,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
