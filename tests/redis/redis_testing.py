"""Helpers for the Redis tests: a private server, waiting, threads, a DLQ."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from missive.adapters import RunnableAdapter
from missive.messages import Message, RawMessage

HERE = Path(__file__).resolve().parent


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A private ``redis-server`` on a loopback port, which tests may restart."""

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.directory = tempfile.mkdtemp(prefix="missive-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            wait_until(self._answers(client), timeout=timeout, interval=0.05)
        finally:
            client.close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.kill()
        process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _answers(self, client: redis.Redis) -> Callable[[], bool]:
        def ping() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"redis-server exited with {self.process.returncode}"
                )
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        return ping


@contextmanager
def running(
    adapter: RunnableAdapter[Any], *, timeout: float = 10.0
) -> Iterator[list[BaseException]]:
    """Run ``adapter`` in a thread for the block; stop and join it after.

    Yields a list that receives the exception ``run()`` raised, if any.
    """
    errors: list[BaseException] = []

    def target() -> None:
        try:
            adapter.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="adapter", daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        adapter.stop()
        thread.join(timeout)
        assert not thread.is_alive(), "the adapter did not stop in time"


class RedisHashDLQ(MutableMapping[bytes, tuple[Message, str]]):
    """A DLQ kept in two Redis hashes, readable from another process."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client: Any = client
        self.reasons = prefix + "dlq:reasons"
        self.payloads = prefix + "dlq:payloads"

    def __getitem__(self, key: bytes) -> tuple[Message, str]:
        reason = self.client.hget(self.reasons, key)
        if reason is None:
            raise KeyError(key)
        payload = self.client.hget(self.payloads, key) or b""
        return RawMessage(payload, key), reason.decode()

    def __setitem__(self, key: bytes, value: tuple[Message, str]) -> None:
        message, reason = value
        pipe = self.client.pipeline()
        pipe.hset(self.payloads, key, message.raw_data)
        pipe.hset(self.reasons, key, reason)
        pipe.execute()

    def __delitem__(self, key: bytes) -> None:
        self.client.hdel(self.reasons, key)
        self.client.hdel(self.payloads, key)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.client.hkeys(self.reasons))

    def __len__(self) -> int:
        return int(self.client.hlen(self.reasons))


def start_missive(
    args: list[str], env: dict[str, str], *, log: Path
) -> subprocess.Popen[bytes]:
    """Start ``python -m missive ARGS`` with this folder importable."""
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "missive", *args],
            cwd=HERE,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` and wait for the exit; kill after a timeout."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
        raise AssertionError("the process did not exit within 15 s") from None
