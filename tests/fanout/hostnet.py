"""Network namespaces standing for hosts: one namespace per worker, each with its own address on a bridge
in the test's namespace, so a worker reaches the Prefect server and PostgreSQL only over its veth link
(its 127.0.0.1 is its own, empty loopback) — what separate hosts on one LAN would see.

Needs root and iproute2 with netns, veth and bridge support; ``unavailable()`` and
``NetnsUnavailableError`` say what is missing. Names carry the creating process id and a sequence number,
so parallel runs do not collide, and links or namespaces left by a killed run (its process gone) are
removed by the next one.
Nothing outside the new links is touched: no routes off the bridge, no forwarding, no firewall rules.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

LOCK = Path("/tmp/dco-hostnet.lock")  # subnet choice and bridge creation, across test processes
_SEQ = itertools.count()
_OURS = re.compile(r"^dco[bhvp](\d+)-")  # dcob: bridge, dcoh: namespace, dcov/dcop: veth ends


class NetnsUnavailableError(Exception):
    """The machine gives no network namespaces to this process; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class Host:
    namespace: str
    address: str

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this host's namespace (``ip netns exec`` execs it: the pid stays the command's)."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass(slots=True)
class HostNet:
    """A bridge with ``gateway`` (the test's own address on it) and one namespace per host behind it."""

    tag: str
    gateway: str
    hosts: list[Host] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"dcob{self.tag}"

    def veth(self, i: int) -> tuple[str, str]:
        return f"dcov{self.tag}{i}", f"dcop{self.tag}{i}"  # at most 15 characters: pid (7) + tag + index

    def close(self) -> None:
        """Remove every link and namespace made for this network (safe to call twice, and after a failure)."""
        for i in range(len(self.hosts)):  # deleting one end of a veth pair deletes both
            _ip("link", "del", self.veth(i)[0], check=False)
        for host in self.hosts:
            _ip("netns", "del", host.namespace, check=False)
        _ip("link", "del", self.bridge, check=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unavailable() -> str | None:
    """Why this process cannot make network namespaces, or None when it can try."""
    if os.environ.get("DCO_TEST_NETNS", "1") == "0":
        return "DCO_TEST_NETNS=0 asks for plain processes"
    if os.geteuid() != 0:
        return "not root (network namespaces and veth links need CAP_NET_ADMIN)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    return None


def open_network(hosts: int) -> HostNet:
    """``hosts`` namespaces on a fresh /24 behind a bridge; ``NetnsUnavailableError`` names a step that failed."""
    reason = unavailable()
    if reason:
        raise NetnsUnavailableError(reason)
    if not 1 <= hosts <= 9:
        raise ValueError("1 to 9 hosts (the index is one character of the link names)")
    remove_stale()
    tag = f"{os.getpid()}-{'0123456789abcdefghijklmnopqrstuvwxyz'[next(_SEQ) % 36]}"
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs must not pick the same subnet
        net = _free_subnet()
        addresses = [str(a) for a in itertools.islice(net.hosts(), hosts + 1)]
        hostnet = HostNet(tag=tag, gateway=addresses[0])
        try:
            _ip("link", "add", hostnet.bridge, "type", "bridge")
            _ip("addr", "add", f"{hostnet.gateway}/{net.prefixlen}", "dev", hostnet.bridge)
            _ip("link", "set", hostnet.bridge, "up")
        except NetnsUnavailableError:
            hostnet.close()
            raise
    try:
        for i, address in enumerate(addresses[1:]):
            host = Host(namespace=f"dcoh{tag}-{i}", address=address)
            outside, inside = hostnet.veth(i)
            _ip("netns", "add", host.namespace)
            hostnet.hosts.append(host)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", host.namespace)
            _ip("link", "set", outside, "master", hostnet.bridge)
            _ip("link", "set", outside, "up")
            _ip("-n", host.namespace, "addr", "add", f"{address}/{net.prefixlen}", "dev", inside)
            _ip("-n", host.namespace, "link", "set", inside, "up")
            _ip("-n", host.namespace, "link", "set", "lo", "up")
            _ip("netns", "exec", host.namespace, "true")  # entering it works too (it remounts /sys)
    except BaseException:
        hostnet.close()
        raise
    return hostnet


def remove_stale() -> None:
    """Remove links and namespaces of ours whose creating process is gone (a run killed before its cleanup),
    ending the processes still inside such a namespace (its workers, started in sessions of their own)."""
    names = [line.split()[0] for line in _ip("netns", "list", check=False).splitlines() if line.strip()]
    links = [m.group(1).split("@")[0] for m in re.finditer(r"^\d+: ([^:]+):", _ip("-o", "link", "show", check=False),
                                                          re.MULTILINE)]
    for name in names + links:
        owner = _OURS.match(name)
        if owner is None or Path(f"/proc/{owner.group(1)}").exists():
            continue
        if name.startswith("dcoh"):
            for pid in _ip("netns", "pids", name, check=False).split():  # workers orphaned with it
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", name, check=False)
        else:
            _ip("link", "del", name, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.2xx.y.0/24 that no address or route of this namespace overlaps."""
    taken = [ipaddress.ip_network(word, strict=False)
             for word in re.findall(r"\b\d+\.\d+\.\d+\.\d+(?:/\d+)?", _ip("-4", "addr", "show", check=False)
                                    + _ip("-4", "route", "show", "table", "all", check=False))
             if not word.endswith("/0")]
    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.{random.randint(200, 249)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return net
    raise NetnsUnavailableError("no free 10.200-249.x.0/24 subnet for the test network")


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise NetnsUnavailableError(f"`ip {' '.join(args)}` failed: {done.stderr.strip() or done.returncode}")
    return done.stdout
