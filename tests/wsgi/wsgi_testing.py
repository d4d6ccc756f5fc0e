"""Helpers for the WSGI adapter's tests: WSGI environs, and a real gunicorn."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

HERE = Path(__file__).resolve().parent

#: How long a gunicorn may take to answer its first health check.
BOOT_TIMEOUT = 20.0
#: How long a gunicorn may take to exit after SIGTERM.
EXIT_TIMEOUT = 15.0


class CountingStream(io.BytesIO):
    """A ``wsgi.input`` that remembers how many bytes the app read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def make_environ(
    method: str = "POST",
    path: str = "/",
    body: bytes = b"",
    *,
    content_type: str | None = "application/json",
    content_length: str | None = "auto",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build a WSGI environ; ``content_length="auto"`` is ``len(body)``."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "wsgi.input": CountingStream(body),
    }
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    if content_length == "auto":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ.update(extra)
    setup_testing_defaults(environ)
    return environ


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(app: Callable[..., Any], environ: dict[str, Any]) -> Response:
    """Call a WSGI application as a server would, and collect its answer."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        started.append((status, headers))

    body = b"".join(app(environ, start_response))
    assert len(started) == 1, "start_response must be called exactly once"
    status, headers = started[0]
    return Response(int(status.split()[0]), dict(headers), body)


# A real gunicorn.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Gunicorn:
    """A gunicorn master process serving an app of ``gunicorn_apps``."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    stopped: bool = field(default=False)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = EXIT_TIMEOUT) -> int:
        """Send SIGTERM and wait for a graceful exit; return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        # The group is this gunicorn's own session: master and workers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)
        self.stopped = True


def start_gunicorn(
    app: str,
    directory: Path,
    *,
    workers: int = 1,
    threads: int = 8,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> Gunicorn:
    """Start gunicorn with threaded workers, serving ``gunicorn_apps:<app>``.

    Its log and the apps' ``events.log`` go to ``directory``.  A port that
    another process took meanwhile is retried with another free port.
    """
    last_log = ""
    for attempt in range(5):
        port = free_port()
        log_path = directory / f"gunicorn-{app}-{attempt}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--chdir",
                    str(HERE),
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--worker-class",
                    "gthread",
                    "--workers",
                    str(workers),
                    "--threads",
                    str(threads),
                    "--graceful-timeout",
                    "10",
                    *args,
                    f"gunicorn_apps:{app}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MISSIVE_TEST_DIR": str(directory), **(env or {})},
                start_new_session=True,
            )
        server = Gunicorn(process, port, log_path)
        if _wait_until_healthy(server):
            return server
        server.kill()
        last_log = server.log
        if "Address already in use" not in last_log:
            break
    raise AssertionError(f"gunicorn did not start:\n{last_log}")


def _wait_until_healthy(server: Gunicorn) -> bool:
    import http.client

    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return True
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.1)
    return False


#: Starts a gunicorn for one test: the ``gunicorn`` fixture.
GunicornFactory = Callable[..., Gunicorn]
