"""Helpers of the reliability suite: scale, private servers, processes, records.

Everything here runs on 127.0.0.1.  Processes the tests start are real
``python -m missive run`` processes running :mod:`reliability_apps`; they
append one line per event to a record file (see that module), which is how a
test compares what was published with what was handled after a SIGKILL.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import redis
from redis_testing import free_port, wait_until

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

#: The environment variable that selects the full form of the suite.
SCALE_VARIABLE = "MISSIVE_RELIABILITY"

__all__ = [
    "FIGURES",
    "HERE",
    "REPO",
    "SCALE",
    "Figures",
    "PersistentRedis",
    "Record",
    "Scale",
    "free_port",
    "percentile",
    "rss_kib",
    "start_missive_run",
    "stop_process",
    "wait_until",
]


@dataclasses.dataclass(frozen=True)
class Scale:
    """How much each test does: the issue's full counts, or a reduced form."""

    name: str
    crash_messages: int
    crash_kills: int
    restart_messages: int
    redis_restarts: int
    fault_seconds: float
    black_hole_seconds: float
    resets: int
    pubsub_burst: int
    sqlite_processes: int
    sqlite_writes: int
    http_mutations: int
    hypothesis_examples: int
    state_machine_examples: int


FULL = Scale(
    name="full",
    crash_messages=10_000,
    crash_kills=20,
    restart_messages=10_000,
    redis_restarts=5,
    fault_seconds=30.0,
    black_hole_seconds=10.0,
    resets=5,
    pubsub_burst=50_000,
    sqlite_processes=8,
    sqlite_writes=5_000,
    http_mutations=10_000,
    hypothesis_examples=1_000,
    state_machine_examples=200,
)

REDUCED = Scale(
    name="reduced",
    crash_messages=1_500,
    crash_kills=4,
    restart_messages=1_500,
    redis_restarts=2,
    fault_seconds=8.0,
    black_hole_seconds=5.0,
    resets=2,
    pubsub_burst=15_000,
    sqlite_processes=8,
    sqlite_writes=1_000,
    http_mutations=600,
    hypothesis_examples=150,
    state_machine_examples=25,
)

SCALE = FULL if os.environ.get(SCALE_VARIABLE, "").lower() == "full" else REDUCED


#: Every test's figures, by test name; conftest writes them out as JSON.
FIGURES: dict[str, dict[str, Any]] = {}


class Figures:
    """Where a test puts what it measured, under its own name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.values = FIGURES.setdefault(name, {})

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def percentile(values: Iterable[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def rss_kib(pid: int) -> int:
    """The resident memory of a process, in KiB (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- a Redis server with persistence, restartable on the same port ----------


class PersistentRedis:
    """A private ``redis-server`` with ``appendfsync always``, on its own port.

    :meth:`kill` and :meth:`start` restart it on the same port and directory,
    so the data written before a kill is what the server loads again.
    """

    def __init__(
        self,
        binary: str,
        *,
        persistent: bool = True,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="missive-reliability-redis-")
        self.persistent = persistent
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis.from_url(self.url, **options)

    def start(self, timeout: float = 20.0) -> float:
        """Start the server; return the seconds until it answered PING."""
        durability = (
            ("--appendonly", "yes", "--appendfsync", "always")
            if self.persistent
            else ("--appendonly", "no")
        )
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *durability,
                "--dir",
                self.directory,
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client(socket_connect_timeout=0.5, socket_timeout=2)
        try:
            wait_until(lambda: self._answers(client), timeout=timeout, interval=0.02)
        finally:
            client.close()
        return time.monotonic() - started

    def kill(self, sig: int = signal.SIGKILL) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(sig)
        process.wait(timeout=20)

    def close(self) -> None:
        self.kill()
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)

    def _answers(self, client: redis.Redis) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.process.returncode}")
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False


# --- processes under test ---------------------------------------------------


def start_missive_run(
    target: str,
    adapter: str,
    options: dict[str, object],
    *,
    env: dict[str, str],
    log: Path,
    message: str = "raw",
) -> subprocess.Popen[bytes]:
    """Start ``python -m missive run TARGET`` with this folder importable.

    Its stderr (the log, with timestamps) is appended to ``log``.
    """
    args = [sys.executable, "-m", "missive", "run", target, "--adapter", adapter]
    args += ["--message", message]
    for key, value in options.items():
        args += ["-o", f"{key}={value}"]
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    with log.open("ab") as stderr:
        return subprocess.Popen(
            args,
            cwd=HERE,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def stop_process(
    process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 20
) -> int:
    """Send ``sig`` and wait for the exit; SIGKILL and fail after ``timeout``."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise AssertionError(f"the process did not exit within {timeout} s") from None


# --- what the processes recorded --------------------------------------------


class Record:
    """Reads a record file that processes append to, as it grows.

    Each line is ``KIND MESSAGE_ID PAYLOAD PID``; kinds are ``R`` (ready),
    ``S`` (a handler started), ``H`` (handled, just before its ack) and
    ``K`` (about to kill itself on purpose).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()
        self._offset = 0
        self._partial = b""
        self.lines: list[tuple[str, str, str, int]] = []
        self.counts: Counter[str] = Counter()
        self.handled: Counter[str] = Counter()
        self.handled_payloads: list[str] = []

    def refresh(self) -> Record:
        with self.path.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        self._offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        for raw in complete:
            kind, message_id, payload, pid = raw.decode().split(" ")
            self.lines.append((kind, message_id, payload, int(pid)))
            self.counts[kind] += 1
            if kind == "H":
                self.handled[message_id] += 1
                self.handled_payloads.append(payload)
        return self

    def count(self, kind: str) -> int:
        return self.refresh().counts[kind]

    def of(self, kind: str) -> list[tuple[str, str, int]]:
        self.refresh()
        return [(m, p, pid) for k, m, p, pid in self.lines if k == kind]

    def ready_pids(self) -> set[int]:
        return {pid for _, _, pid in self.of("R")}


def wait_for_progress(
    record: Record,
    target: int,
    process: subprocess.Popen[bytes] | None = None,
    *,
    timeout: float = 60,
) -> None:
    """Wait until ``target`` handled lines were recorded; fail if the process
    under test exited meanwhile."""

    def reached() -> bool:
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the processor exited with {process.returncode} before "
                f"{target} messages were handled"
            )
        return record.count("H") >= target

    wait_until(reached, timeout=timeout, interval=0.01)


def publish_numbered(
    client: redis.Redis,
    stream: str,
    numbers: Iterable[int],
    *,
    poison: Callable[[int], bool] = lambda n: False,
) -> dict[str, int]:
    """XADD one entry per number; return ``{message id: number}``.

    A poisoned entry's payload starts with ``poison``, which makes the
    handler of :mod:`reliability_apps` raise.
    """
    numbers = list(numbers)
    published: dict[str, int] = {}
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        pipe = client.pipeline(transaction=False)
        for number in chunk:
            payload = b"poison-%d" % number if poison(number) else b"n-%d" % number
            pipe.xadd(stream, {"data": payload})
        for number, entry_id in zip(chunk, pipe.execute(), strict=True):
            published[f"{stream}/{entry_id.decode()}"] = number
    return published


def dead_letter_ids(path: Path) -> dict[str, tuple[str, int]]:
    """``{message id: (reason, attempts)}`` of a SQLite DLQ file (may be absent)."""
    if not path.exists():
        return {}
    from missive_sqlite_dlq import SQLiteDLQ

    dlq: SQLiteDLQ[Any] = SQLiteDLQ(path, create=False)
    try:
        return {
            entry.message_id.decode(): (entry.reason, entry.attempts)
            for entry in dlq.dead_letters()
        }
    finally:
        dlq.close()


def pending_count(client: redis.Redis, stream: str, group: str) -> int:
    try:
        return int(client.xpending(stream, group)["pending"])
    except redis.ResponseError:
        return 0
