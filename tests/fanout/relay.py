"""A TCP relay in the test's own process: accepts on one address and pipes every connection to a service on
loopback, remembering which addresses connected.

Why: the shared PostgreSQL listens on 127.0.0.1 only (and must stay so), and a worker in its own network
namespace has a loopback of its own; the relay on the bridge address stands for the database host's
interface. Counting peers lets a test show that traffic came from the namespaces' addresses.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Self


class TcpRelay:
    """``with TcpRelay("10.x.y.1", ("127.0.0.1", 5432)) as r:`` — connect to ``r.host:r.port``."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.host, self.target = host, target
        self.port = 0
        self.peers: Counter[str] = Counter()  # address → connections accepted (written by the relay's thread)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"relay-{host}", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"relay on {self.host} did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def seen(self) -> set[str]:
        return set(self.peers.copy())

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by __enter__ when it happens before the relay is ready
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._pipe_connection, self.host, 0)
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        async with server:
            await self._stop.wait()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    async def _pipe_connection(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        self.peers[str(down_w.get_extra_info("peername")[0])] += 1
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            down_w.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                await _copy(src, dst)
            except OSError:  # one side reset (a killed worker): end the other side too
                up_w.close()
                down_w.close()

        try:
            await asyncio.gather(pipe(down_r, up_w), pipe(up_r, down_w))
        finally:
            up_w.close()
            down_w.close()


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Bytes from ``src`` to ``dst`` until EOF, then a half-close, so the other direction can finish."""
    while data := await src.read(65536):
        dst.write(data)
        await dst.drain()
    if dst.can_write_eof():
        dst.write_eof()
