"""Benchmark: what growth costs — the same hunt over 1×, 4× and 16× the corpus, with 1, 2 and all
cores' worker processes, and with separate processes standing for hosts; plus the database and
orchestration costs that a fanned-out hunt adds, and a model of a billion events across N hosts.

Peer: the single-process hunt of the same corpus in the same run (scaling efficiency is measured
against it). Each worker's time includes compiling the rules (about 2 s for SigmaHQ rules/windows), the
fixed cost every shard pays: small shards scale badly, which is why shards should be minutes of work.
Prints per configuration events/s in total and per worker, the scaling efficiency (speed-up / workers)
and the peak RSS per worker process; then PostgreSQL's insert rate for hit
evidence (``record_hunt`` into a fresh database, STIX objects/s); then the Prefect server's limit: a
server started here on its own PostgreSQL database, driven with the REST calls of a shard's life (create,
Pending → Running → Completed, the parent's reads) by several clients at once, calls/s measured; and the
API calls a shard costs, hence how many shards one server keeps running; then the model.

    .venv/bin/python -m bench.bench_fanout [--shared ../shared] [--scales 1 4 16] [--hosts 3] [--no-server]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = "security-datasets/data"
RULES = "sigma/rules/windows"
PG_ADMIN = os.environ.get("DCO_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

# One worker process: hunts the files it is given, prints events, seconds and its own peak RSS.
WORKER = """
import json, resource, sys, time
from pathlib import Path
from dcoflow.tasks.conduct.local_hunt import run_local_hunt
rules, workers, files = Path(sys.argv[1]), int(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
t0 = time.perf_counter()
out = run_local_hunt(rules, files, workers=workers, sample=20)
took = time.perf_counter() - t0
kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"events": out.events_read, "seconds": took, "hits": sum(m.count for m in out.matches),
                  "rss_mb": kb / 1024}))
"""


def _corpus(shared: Path, copies: int, into: Path) -> list[Path]:
    files = sorted(p for p in (shared / DATA).rglob("*.zip"))
    out = []
    for c in range(copies):
        for i, f in enumerate(files):
            link = into / f"x{copies}" / f"c{c}" / f"{i:03d}-{f.name}"
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(f)
            out.append(link)
    return out


def _run(rules: Path, files: list[Path], workers: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", WORKER, str(rules), str(workers), *map(str, files)],
                          capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _hosts(rules: Path, files: list[Path], hosts: int) -> dict[str, Any]:
    """``hosts`` processes at once, each hunting its shard with one worker (what separate hosts would do)."""
    from dcoflow.models.shards import plan_shards

    shards = plan_shards([(str(f), f.stat().st_size) for f in files], hosts)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(rules), "1", *s.files], stdout=subprocess.PIPE,
                              text=True) for s in shards]
    outs = [json.loads((p.communicate()[0] or "").strip().splitlines()[-1]) for p in procs]
    took = time.perf_counter() - t0
    return {"events": sum(o["events"] for o in outs), "seconds": took, "hits": sum(o["hits"] for o in outs),
            "rss_mb": max(o["rss_mb"] for o in outs), "workers": len(shards)}


def _pg_insert_rate(rules: Path, files: list[Path]) -> tuple[float, int] | None:
    """STIX objects/s that ``record_hunt`` writes for a hunt's hits into a fresh PostgreSQL database."""
    import uuid

    from sqlalchemy import create_engine, pool, text

    name = f"dco_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server: say so, don't invent a figure
        print(f"  PostgreSQL unreachable ({type(exc).__name__}); insert rate not measured")
        return None
    os.environ["DCO_DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        from dcoflow.core.db import dispose_engines, session_scope
        from dcoflow.core.settings import get_settings
        from dcoflow.models.operation import DcoSpec, DcoState
        from dcoflow.models.repository.operation import create_operation, transition
        from dcoflow.models.stix.rows import StixObjectRow
        from dcoflow.tasks.conduct.hunt_record import record_hunt
        from dcoflow.tasks.conduct.local_hunt import run_local_hunt

        get_settings.cache_clear()
        outcome = run_local_hunt(rules, files, sample=500)
        with session_scope() as s:
            spec = {"name": "Bench", "objective": "measure", "type": "threat-hunt",
                    "threat_profile": {"techniques": ["T1003"]}}
            op = create_operation(s, DcoSpec.model_validate(spec), "bench")
            for state in (DcoState.PLANNED, DcoState.APPROVED):
                transition(s, op, state, "bench", "benchmark")
            dco = op.id
        t0 = time.perf_counter()
        with session_scope() as s:
            record_hunt(s, dco, outcome, hunt_key="bench", catalog=None)
        took = time.perf_counter() - t0
        from sqlmodel import func, select

        with session_scope() as s:
            rows = int(s.exec(select(func.count()).select_from(StixObjectRow)).one())
        dispose_engines()
        return rows / took, rows
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _prefect_server_rate(clients: int, seconds: float) -> tuple[float, int] | None:
    """REST calls/s a Prefect server on PostgreSQL answers, ``clients`` threads each playing shards' lives."""
    import socket
    import threading
    import uuid

    import httpx
    from sqlalchemy import create_engine, pool, text

    name = f"dco_bench_prefect_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"  PostgreSQL unreachable ({type(exc).__name__}); Prefect server not measured")
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    api = f"http://127.0.0.1:{port}/api"
    home = tempfile.mkdtemp(prefix="dco-bench-prefect-")
    env = {**os.environ, "PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": PG_ADMIN.rsplit("/", 1)[0].replace("+psycopg", "+asyncpg")
           + f"/{name}"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print("  the Prefect server did not start; not measured")
                return None
            time.sleep(0.5)
        flow_id = httpx.post(f"{api}/flows/", json={"name": "bench-shard"}, timeout=30).json()["id"]
        calls = [0] * clients
        stop = time.monotonic() + seconds

        def shard_lives(i: int) -> None:
            with httpx.Client(base_url=api, timeout=60) as client:
                while time.monotonic() < stop:
                    run = client.post("/flow_runs/", json={"flow_id": flow_id, "state": {"type": "SCHEDULED"}})
                    run.raise_for_status()
                    rid = run.json()["id"]
                    for state in ("PENDING", "RUNNING", "COMPLETED"):
                        client.post(f"/flow_runs/{rid}/set_state", json={"state": {"type": state}}).raise_for_status()
                        client.get(f"/flow_runs/{rid}").raise_for_status()  # the parent's poll
                    calls[i] += 7

        threads = [threading.Thread(target=shard_lives, args=(i,)) for i in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(calls) / (time.perf_counter() - t0), clients
    finally:
        os.killpg(server.pid, 9)
        server.wait(timeout=30)
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--hosts", type=int, default=3, help="separate processes standing for hosts")
    ap.add_argument("--heartbeat-s", type=float, default=30.0)
    ap.add_argument("--poll-s", type=float, default=2.0)
    ap.add_argument("--no-server", action="store_true", help="skip starting a Prefect server to measure its rate")
    ap.add_argument("--server-clients", type=int, default=8, help="concurrent clients driving the Prefect server")
    args = ap.parse_args()
    rules = args.shared / RULES
    cores = len(os.sched_getaffinity(0))
    counts = sorted({1, 2, cores})
    print(f"machine: {cores} cores available; rules: {rules}")
    print(f"{'corpus':>7} {'setup':>22} {'events':>9} {'s':>7} {'ev/s':>9} {'ev/s/worker':>11} {'eff.':>5} "
          f"{'peak RSS/worker MB':>18}")
    per_core = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            files = _corpus(args.shared, scale, Path(tmp))
            base: float | None = None
            for n in counts:
                r = _run(rules, files, n)
                rate = r["events"] / r["seconds"]
                base = base or rate
                per_core = max(per_core, rate / n) if n == 1 else per_core
                print(f"{scale:>6}× {f'{n} worker process(es)':>22} {r['events']:>9} {r['seconds']:>7.1f} "
                      f"{rate:>9.0f} {rate / n:>11.0f} {rate / base / n:>5.2f} {r['rss_mb']:>18.0f}")
            h = _hosts(rules, files, args.hosts)
            rate = h["events"] / h["seconds"]
            label = f"{h['workers']} host processes"
            print(f"{scale:>6}× {label:>22} {h['events']:>9} {h['seconds']:>7.1f} "
                  f"{rate:>9.0f} {rate / h['workers']:>11.0f} {rate / (base or rate) / h['workers']:>5.2f} "
                  f"{h['rss_mb']:>18.0f}")
        pg = _pg_insert_rate(rules, _corpus(args.shared, 1, Path(tmp)))
    if pg:
        print(f"PostgreSQL: record_hunt wrote {pg[1]} STIX objects at {pg[0]:.0f} objects/s")
    shard_s = 600.0
    calls = 1 + 4 + shard_s / args.heartbeat_s + shard_s / args.poll_s
    print(f"Prefect API per shard of {shard_s:.0f} s: 1 create + ~4 state changes + {shard_s / args.heartbeat_s:.0f} "
          f"heartbeats + {shard_s / args.poll_s:.0f} parent polls ≈ {calls:.0f} calls")
    server = None if args.no_server else _prefect_server_rate(args.server_clients, 20.0)
    if server:
        rate, clients = server
        print(f"Prefect server on PostgreSQL, {clients} clients: {rate:.0f} API calls/s")
        for poll_s in sorted({args.poll_s, 30.0}):  # the parent's polls dominate: a longer poll_s buys shards
            per_shard = 1 + 4 + shard_s / args.heartbeat_s + shard_s / poll_s
            print(f"  parent polling every {poll_s:.0f} s: {per_shard:.0f} calls per {shard_s:.0f} s shard → about "
                  f"{rate * shard_s / per_shard:.0f} shards running at once before the server saturates")
    print("Model for 1,000,000,000 events (throughput per core measured here, linear in cores × hosts up to the "
          "efficiency measured above):")
    for hosts in (1, 4, 16, 64):
        for host_cores in (2, 16):
            hours = 1e9 / (per_core * host_cores * hosts) / 3600
            print(f"  {hosts:>3} hosts × {host_cores:>2} cores: {hours:6.2f} h")


if __name__ == "__main__":
    main()
