"""A TCP proxy on 127.0.0.1 that injects network faults between two peers.

It forwards every connection it accepts to one upstream address, and can:

- add latency: each chunk waits ``latency`` seconds before it is forwarded;
- black-hole the link: no byte passes either way, on open connections or new
  ones, until it is healed (what a partition looks like to TCP: the
  connection stays open, and bytes held meanwhile arrive after the heal);
- reset every open connection (RST, through ``SO_LINGER`` 0).

The proxy runs an asyncio loop in a daemon thread; its methods are safe to
call from the test's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis_testing import free_port

CHUNK_BYTES = 64 * 1024


class FaultProxy:
    """Forward ``127.0.0.1:port`` to ``upstream``, with faults on demand.

    :param upstream_port: the port on 127.0.0.1 to forward to.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.latency = 0.0
        self.accepted = 0
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._open = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="fault-proxy", daemon=True
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("the fault proxy did not start")
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def set_latency(self, seconds: float) -> None:
        self.latency = seconds

    def black_hole(self) -> None:
        """Stop every byte, both ways, until :meth:`heal`; in force on return."""
        self._in_loop(self._open.clear)

    def heal(self) -> None:
        """Let bytes pass again; in force on return."""
        self._in_loop(self._open.set)

    @contextmanager
    def black_holed(self) -> Iterator[None]:
        self.black_hole()
        try:
            yield
        finally:
            self.heal()

    def reset_all(self) -> int:
        """Close every open connection with a reset; return how many."""
        future = asyncio.run_coroutine_threadsafe(self._reset_all(), self._loop)
        return future.result(10)

    def _in_loop(self, action: Callable[[], None]) -> None:
        """Run ``action`` in the proxy's loop and wait until it ran."""
        done = threading.Event()

        def run() -> None:
            action()
            done.set()

        self._loop.call_soon_threadsafe(run)
        if not done.wait(10):
            raise AssertionError("the fault proxy's loop did not answer")

    # --- the loop's side ----------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _listen(self) -> None:
        self._open.set()
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.accepted += 1
        self._writers.add(client_writer)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            # A new connection is held too while the link is black-holed.
            await self._open.wait()
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port
            )
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pump(client_reader, upstream_writer),
                self._pump(upstream_reader, client_writer),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                chunk = await reader.read(CHUNK_BYTES)
                if not chunk:
                    break
                await self._open.wait()
                if self.latency:
                    await asyncio.sleep(self.latency)
                await self._open.wait()
                writer.write(chunk)
                await writer.drain()
        finally:
            # One side ended: end the other, so that the peer sees it.
            with contextlib.suppress(OSError):
                writer.close()

    async def _reset_all(self) -> int:
        writers = list(self._writers)
        for writer in writers:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
            writer.transport.abort()
        self.resets += len(writers)
        return len(writers)

    async def _shutdown(self) -> None:
        self._open.set()
        if self._server is not None:
            self._server.close()
        await self._reset_all()
