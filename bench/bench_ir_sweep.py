"""Benchmark: an IOC sweep of 10,000 STIX-pattern indicators against a Sigma hunt over the same telemetry.

Data: the Security-Datasets Windows recordings (``--data``, default the whole ``security-datasets/data``
folder of the shared content). Indicators: ``--count`` STIX indicators the way threat feeds ship them —
mostly file hashes (MD5/SHA-1/SHA-256), domains, IPs and file names (equality, indexed), and ``--scan-share``
of command-line LIKE/MATCHES patterns (evaluated on every process event) — plus a few taken from the data so
something is found. The Sigma hunt runs SigmaHQ ``rules/windows`` with one worker (the sweep uses one process).
Prints compile and sweep times, events/s, and the Sigma figures beside them.

    .venv/bin/python -m bench.bench_ir_sweep [--shared ../shared] [--count 10000] [--scan-share 0.02]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dcoflow.connectors.telemetry import iter_data_files  # noqa: E402
from dcoflow.models.sigma.compiler import RuleSet  # noqa: E402
from dcoflow.tasks.conduct.ir_sweep import sweep  # noqa: E402
from dcoflow.tasks.conduct.local_hunt import compile_selection, hunt_compiled  # noqa: E402

REAL = [  # present in the Security-Datasets recordings
    "[process:command_line LIKE '%comsvcs.dll%MiniDump%']",
    "[file:hashes.'SHA-256' = '4206F04FAD8000FA1CD66549A87EC2829011B7CD929DD8E59F75FFB677366AE9']",
    "[process:image_ref.name = 'rundll32.exe' AND process:parent_ref.image_ref.name = 'powershell.exe']",
]


def indicators(count: int, scan_share: float, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def hexs(n: int) -> str:
        return "".join(rng.choice("0123456789abcdef") for _ in range(n))

    def word() -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(5, 10)))

    def ip(first: str | None = None) -> str:
        return ".".join([first or str(rng.randint(1, 223)), *(str(rng.randint(0, 255)) for _ in range(2)),
                         str(rng.randint(1, 254))])

    makers = [
        lambda: f"[file:hashes.MD5 = '{hexs(32)}']",
        lambda: f"[file:hashes.'SHA-1' = '{hexs(40)}']",
        lambda: f"[file:hashes.'SHA-256' = '{hexs(64)}']",
        lambda: f"[domain-name:value = '{word()}.{word()}.com']",
        lambda: f"[ipv4-addr:value = '{ip()}']",
        lambda: f"[file:name = '{word()}.exe']",
        lambda: f"[network-traffic:dst_ref.value = '{ip('10')}' AND "
                f"network-traffic:dst_port = {rng.randint(1024, 65535)}]",
    ]
    scans = [
        lambda: f"[process:command_line LIKE '%{word()}%']",
        lambda: f"[process:command_line MATCHES '{word()}\\\\.(exe|dll)\\\\s+-[a-z]+']",
    ]
    patterns = list(REAL)
    n_scan = int(count * scan_share)
    patterns += [rng.choice(scans)() for _ in range(n_scan)]
    patterns += [rng.choice(makers)() for _ in range(count - len(patterns))]
    return [{"type": "indicator", "spec_version": "2.1", "id": f"indicator--00000000-0000-4000-8000-{i:012d}",
             "name": f"ioc {i}", "pattern": p, "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"}
            for i, p in enumerate(patterns)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--scan-share", type=float, default=0.02)
    args = ap.parse_args()
    data = args.data or args.shared / "security-datasets" / "data"
    files = list(iter_data_files([data]))

    inds = indicators(args.count, args.scan_share)
    t0 = time.perf_counter()
    result = sweep(inds, data)
    stix_s = time.perf_counter() - t0
    counts = result.counts()
    print(f"STIX sweep: {len(inds)} indicators ({int(args.count * args.scan_share)} scanning), {result.files} files, "
          f"{result.events_read} events: {stix_s:.2f} s total (parse + compile + read + match), "
          f"{result.events_read / stix_s:,.0f} events/s; {counts}")

    t0 = time.perf_counter()
    compiled, skipped, _ = compile_selection(args.shared / "sigma" / "rules" / "windows", None)
    sigma_compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    hunted = hunt_compiled(RuleSet(compiled), files, workers=1)
    sigma_hunt_s = time.perf_counter() - t1
    total = sigma_compile_s + sigma_hunt_s
    print(f"Sigma hunt: {len(compiled)} rules ({len(skipped)} skipped), {hunted.events_read} events: "
          f"{total:.2f} s total (index + compile {sigma_compile_s:.2f} s, read + match {sigma_hunt_s:.2f} s), "
          f"{hunted.events_read / total:,.0f} events/s; {len(hunted.matches)} rules matched")
    print(f"ratio STIX sweep / Sigma hunt (total time): {stix_s / total:.2f}")


if __name__ == "__main__":
    main()
