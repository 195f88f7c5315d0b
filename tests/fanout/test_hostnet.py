"""The namespaces that stand for hosts in the fan-out test: a worker's namespace reaches PostgreSQL only
through the relay on the bridge (its own 127.0.0.1 has no database), and nothing is left behind, not even
by a run killed before its cleanup."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from . import hostnet
from .relay import TcpRelay

# Run inside a namespace: the relayed database answers, the namespace's own loopback has none.
PROBE = """
import socket, sys, psycopg
host, port = sys.argv[1], int(sys.argv[2])
with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", connect_timeout=10) as c:
    print(c.execute("select 41 + 1").fetchone()[0])
try:
    socket.create_connection(("127.0.0.1", 5432), timeout=5)
    print("loopback reaches 5432")
except OSError as exc:
    print(type(exc).__name__)
"""


@pytest.fixture()
def net() -> Iterator[hostnet.HostNet]:
    try:
        made = hostnet.open_network(2)
    except hostnet.NetnsUnavailableError as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    with made:
        yield made


def _exists(kind: str, name: str) -> bool:
    listing = subprocess.run(["ip", *(["netns", "list"] if kind == "netns" else ["-o", "link", "show"])],
                             capture_output=True, text=True, check=True).stdout
    return any(word.split("@")[0].rstrip(":") == name for word in listing.split())


def _pids(namespace: str) -> list[str]:
    done = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False)
    return done.stdout.split()


@pytest.mark.postgres
def test_a_namespace_reaches_postgresql_only_through_the_relay(net: hostnet.HostNet) -> None:
    with TcpRelay(net.gateway, ("127.0.0.1", 5432)) as relay:
        for host in net.hosts:
            done = subprocess.run(host.command(sys.executable, "-c", PROBE, net.gateway, str(relay.port)),
                                  capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, done.stderr[-2000:]
            assert done.stdout.split() == ["42", "ConnectionRefusedError"]
    assert relay.seen() == {h.address for h in net.hosts}
    assert len({h.address for h in net.hosts} | {net.gateway}) == 3


def test_the_network_is_removed_on_close_and_stale_ones_by_the_next_run() -> None:
    try:
        made = hostnet.open_network(1)
    except hostnet.NetnsUnavailableError as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    with made:
        assert _exists("netns", made.hosts[0].namespace) and _exists("link", made.bridge)
    assert not _exists("netns", made.hosts[0].namespace) and not _exists("link", made.bridge)
    assert not _exists("link", made.veth(0)[0])

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process id that no longer exists: the owner of a run killed before its cleanup
    stale = f"dcoh{gone.pid}-0-0"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    orphan = subprocess.Popen(["ip", "netns", "exec", stale, "sleep", "300"])  # a worker left running inside
    try:
        deadline = time.monotonic() + 20
        while str(orphan.pid) not in _pids(stale) and time.monotonic() < deadline:
            time.sleep(0.1)
        hostnet.remove_stale()
        assert not _exists("netns", stale)
        assert orphan.wait(timeout=10) == -signal.SIGKILL
    finally:
        orphan.kill()
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, check=False)
