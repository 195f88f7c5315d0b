"""A hunt fanned out over real Prefect workers (separate processes) against one Prefect server and one
PostgreSQL: every shard recorded once, the result equal to a single-process hunt, and a worker killed
mid-shard does not change the result (its run is marked Crashed by the zombie automation, the shard
runs again on another worker).

Hosts: where the machine allows (root, iproute2), each worker runs in its own network namespace with its
own address on a bridge (``hostnet.py``) and reaches the Prefect server and PostgreSQL, which stay on
127.0.0.1, through relays on the bridge address (``relay.py``), as a worker host would over a LAN.
Elsewhere (or with DCO_TEST_NETNS=0) workers are plain processes on 127.0.0.1; test_hostnet.py then
skips, naming what is missing. Needs: the `prefect` CLI of this venv, PostgreSQL on loopback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dcoflow.core.db import dispose_engines, session_scope
from dcoflow.core.settings import get_settings
from dcoflow.models.hunt_run import HuntRun
from dcoflow.models.hunting import HuntSelection
from dcoflow.models.operation import DcoSpec, DcoState
from dcoflow.models.repository.operation import create_operation, transition

from . import hostnet
from .relay import TcpRelay

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DATA = "security-datasets/data/atomic/windows"
RULES = "sigma/rules/windows/process_creation"
POOL = "dco-fanout-test"
WORKERS = 3
COPIES = 3  # the corpus three times over (links), so shards last long enough to lose a worker mid-shard

pytestmark = [pytest.mark.postgres, pytest.mark.prefect, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def corpus(shared_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "telemetry"
    files = sorted((shared_dir / DATA).rglob("*.zip"))
    for copy in range(COPIES):
        for f in files:
            link = out / f"copy{copy}" / f.parent.parent.name / f.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f)
    return out


@pytest.fixture()
def hosts() -> Iterator[hostnet.HostNet | None]:
    """A network namespace per worker, or None (plain processes) where the machine gives none."""
    try:
        net = hostnet.open_network(WORKERS)
    except hostnet.NetnsUnavailableError:
        yield None  # test_hostnet.py reports why
        return
    with net:  # after the cluster's teardown (it depends on this fixture): no process is left inside
        yield net


@pytest.fixture()
def cluster(tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch, hosts: hostnet.HostNet | None,
            request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A Prefect server, a process work pool with the hunt-shard deployment, 3 workers (each in its own
    network namespace when ``hosts`` has them), a PostgreSQL database."""
    make = request.getfixturevalue("make_pg_database")
    db_url, prefect_db = make("dco_fanout"), make("dco_fanout_prefect")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
           "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_PREFETCH_SECONDS": "2",
           "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false", "DCO_ZOMBIE_AFTER_S": "60",
           # the server on PostgreSQL too: SQLite locks under three workers' heartbeats
           "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db.replace("+psycopg", "+asyncpg"),
           "DCO_DATABASE_URL": db_url, "DCO_CONTENT_DIR": str(shared_dir), "DCO_PROJECT_DIR": str(ROOT),
           "DCO_CACHE_DIR": str(tmp_path / "cache"), "DCO_DATA_DIR": str(tmp_path / "data")}
    procs: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    relays = contextlib.ExitStack()
    relayed: dict[str, TcpRelay] = {}
    # What the workers (and the flow runs they start) connect to: in namespaces, the relays on the bridge.
    worker_env = dict(env)

    def start(name: str, *args: str, host: hostnet.Host | None = None,
              environ: dict[str, str] = env) -> subprocess.Popen[bytes]:
        argv = [str(BIN / "prefect"), *args]
        log = (logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(host.command(*argv) if host else argv, env=environ, stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)  # its own process group: one kill takes its runs
        procs.append(proc)
        return proc

    try:
        if hosts is not None:
            from sqlalchemy.engine import make_url

            url = make_url(db_url)
            pg = relayed["postgres"] = relays.enter_context(TcpRelay(hosts.gateway, (url.host or "", url.port or 5432)))
            api_relay = relayed["prefect"] = relays.enter_context(TcpRelay(hosts.gateway, ("127.0.0.1", port)))
            worker_env.update(
                DCO_DATABASE_URL=url.set(host=hosts.gateway, port=pg.port).render_as_string(hide_password=False),
                PREFECT_API_URL=f"http://{hosts.gateway}:{api_relay.port}/api")
        start("server", "server", "start", "--host", "127.0.0.1", "--port", str(port))
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the Prefect server did not start: " + (logs / "server.log").read_text()[-2000:])
            time.sleep(0.5)
        # the deployment's job variables carry DCO_DATABASE_URL to the flow runs: the address workers reach
        deploy_env = {**env, "DCO_DATABASE_URL": worker_env["DCO_DATABASE_URL"]}
        for args in (["work-pool", "create", POOL, "--type", "process"],
                     ["--no-prompt", "deploy", "--name", "hunt-shard", "--pool", POOL]):
            done = subprocess.run([str(BIN / "prefect"), *args], env=deploy_env, cwd=ROOT, capture_output=True,
                                  timeout=180, check=False)
            assert done.returncode == 0, done.stdout.decode()[-2000:] + done.stderr.decode()[-2000:]
        workers = [start(f"worker{i}", "worker", "start", "--pool", POOL, "--limit", "1", "--name", f"host{i}",
                         host=hosts.hosts[i] if hosts else None, environ=worker_env)
                   for i in range(WORKERS)]
        for key, value in env.items():
            if key.startswith(("PREFECT_", "DCO_")):
                monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        dispose_engines()
        # The session's Prefect test harness (when an earlier test started it) holds a settings context that
        # outranks the environment: point this process at the cluster's server explicitly.
        from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
            yield {"api": api, "workers": workers, "env": env, "logs": logs, "hosts": hosts,
                   "relays": relayed}
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        relays.close()
        get_settings.cache_clear()
        dispose_engines()


def _shard_runs(api: str) -> list[dict[str, Any]]:
    body = {"flows": {"name": {"any_": ["hunt-shard"]}}, "limit": 200}
    return list(httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json())


def _kill_a_worker_mid_shard(api: str, workers: list[subprocess.Popen[bytes]], out: dict[str, Any]) -> None:
    """Wait for a shard run to be Running, then SIGKILL its worker's whole process group (a host lost)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for run in _shard_runs(api):
            if run["state_type"] == "RUNNING" and run.get("infrastructure_pid"):
                pid = int(str(run["infrastructure_pid"]).rsplit(":", 1)[-1])
                chain = _ancestors(pid)
                for w in workers:
                    if w.pid in chain:
                        os.killpg(os.getpgid(pid), signal.SIGKILL)  # the flow run, wherever its group is
                        os.killpg(w.pid, signal.SIGKILL)  # and the worker that ran it
                        out.update(worker=w.pid, flow_run=run["id"], shard=run["name"])
                        return
        time.sleep(0.2)


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        chain.append(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state is the parent pid
    return chain


def _single_process(rules: Path, corpus: Path) -> tuple[int, dict[str, int]]:
    from dcoflow.tasks.conduct.local_hunt import run_local_hunt

    outcome = run_local_hunt(rules, corpus, HuntSelection(), workers=1)
    return outcome.events_read, {m.rule.rule_id: m.count for m in outcome.matches}


def test_fanout_over_three_workers_survives_a_lost_worker(cluster: dict[str, Any], corpus: Path,
                                                          shared_dir: Path) -> None:
    from dcoflow.flows.hunt_fanout import FanoutParameters, hunt_fanout

    net: hostnet.HostNet | None = cluster["hosts"]
    workers: list[subprocess.Popen[bytes]] = cluster["workers"]
    if net is not None:  # one network namespace per worker, none of them the test's own
        spaces = {os.readlink(f"/proc/{w.pid}/ns/net") for w in workers}
        assert len(spaces) == WORKERS and os.readlink("/proc/self/ns/net") not in spaces
    with session_scope() as s:
        op = create_operation(s, DcoSpec.model_validate({
            "name": "Fanout Op", "objective": "hunt everywhere", "type": "threat-hunt",
            "threat_profile": {"techniques": ["T1003.001"]}}), "tester")
        for state in (DcoState.PLANNED, DcoState.APPROVED):  # hunts recorded against a DCO need its approval
            transition(s, op, state, "tester", "approved for the fan-out test")
        dco = op.id
    rules = shared_dir / RULES
    params = FanoutParameters(dco=dco, data=[str(corpus)], rules_path=[str(rules)], techniques=["T1003", "T1059"],
                              shards=6, poll_s=1.0, actor="tester")
    killed: dict[str, Any] = {}
    killer = threading.Thread(target=_kill_a_worker_mid_shard, args=(cluster["api"], workers, killed))
    killer.start()
    result = hunt_fanout(params)
    killer.join(timeout=5)

    assert killed, "no shard was seen running"
    assert result["retried"], f"the lost worker's shard was not started again: {result}"
    runs = _shard_runs(cluster["api"])
    completed = [r["name"].rsplit("-try", 1)[0] for r in runs if r["state_type"] == "COMPLETED"]
    assert sorted(completed) == sorted(set(completed)) and len(completed) == result["shards"] == 6
    assert any(r["id"] == killed["flow_run"] and r["state_type"] == "CRASHED" for r in runs)
    if net is not None:  # traffic came over the namespaces' links: every worker polled, shards recorded from there
        addresses = {h.address for h in net.hosts}
        lost = net.hosts[[w.pid for w in workers].index(killed["worker"])].address
        assert cluster["relays"]["prefect"].seen() == addresses
        recorded_from = cluster["relays"]["postgres"].seen()
        assert recorded_from <= addresses and recorded_from - {lost}, recorded_from  # the retry ran on another host

    from dcoflow.connectors.content.sigma_rules import load_rule_index

    events, hits = _single_process(rules, corpus)
    wanted = {r.rule_id for r in load_rule_index(rules).select(HuntSelection(techniques=["T1003", "T1059"]))}
    hits = {k: v for k, v in hits.items() if k in wanted}
    with session_scope() as s:
        run = s.get(HuntRun, result["run_id"])
        assert run is not None and run.status == "completed"
        assert run.events_read == events and result["events_read"] == events
        assert {k: int(v["hits"]) for k, v in run.rule_stats.items() if int(v["hits"])} == hits
        assert all(len(v.get("shards", {})) == 6 for v in run.rule_stats.values())
