"""The WSGI adapter under gunicorn against a bare WSGI callable.

Both applications answer a JSON POST with ``200 {"result": "ack"}``; the
candidate goes through :class:`~missive_wsgi.WSGIAdapter` and a processor
whose one handler acks, the baseline only reads the body.  Each runs in its
own gunicorn with the same settings, started once; the same load generator
(keep-alive ``http.client`` connections from a few threads, on loopback)
drives them alternately, round by round.

gunicorn must be installed (``pip install gunicorn``).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Comparison, compare, rate

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

ROOT = Path(__file__).resolve().parent.parent
BODY = b'{"type": "order.created", "data": {"id": 1234, "total": 99.5}}'
ANSWER = b'{"result": "ack"}'
#: The server settings both applications run with.
GUNICORN_SETTINGS = ("--worker-class", "gthread", "--workers", "1", "--threads", "4")
#: Client threads, each with its own kept-alive connection.
CLIENTS = 4
#: A round stops after this many seconds, whatever its count.
ROUND_TIME_LIMIT = 30.0
BOOT_TIMEOUT = 20.0


def baseline_app() -> WSGIApplication:
    """A bare WSGI callable giving the same answer (gunicorn factory)."""
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(ANSWER))),
    ]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", list(headers))
        return [ANSWER]

    return app


def candidate_app() -> WSGIApplication:
    """The adapter with a processor whose handler acks (gunicorn factory)."""
    from missive import HandlingContext, JSONMessage, Processor
    from missive_wsgi import WSGIAdapter

    processor: Processor[JSONMessage] = Processor()

    @processor.handle_for(lambda message: True)
    def ack(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
        ctx.ack()

    return WSGIAdapter(JSONMessage, processor)


def run(quick: bool) -> list[Comparison]:
    count, rounds = (300, 2) if quick else (4000, 5)
    with (
        _gunicorn("baseline_app()") as baseline_port,
        _gunicorn("candidate_app()") as candidate_port,
    ):
        result = compare(
            "WSGIAdapter under gunicorn, one JSON POST acked",
            baseline_name="bare WSGI callable, same answer",
            candidate=lambda n: _load(candidate_port, n),
            baseline=lambda n: _load(baseline_port, n),
            count=count,
            rounds=rounds,
            target=0.85,
            unit="req/s",
            note=(
                f"gunicorn {' '.join(GUNICORN_SETTINGS)}, {CLIENTS} keep-alive "
                f"http.client senders on loopback, {len(BODY)}-byte body"
            ),
        )
    in_process = compare(
        "WSGIAdapter called in process, no server",
        baseline_name="bare WSGI callable, same answer",
        candidate=lambda n: _call_directly(candidate_app(), n),
        baseline=lambda n: _call_directly(baseline_app(), n),
        count=count * 10,
        rounds=rounds,
        unit="req/s",
        note="the adapter's own cost per request, which a server's hides; "
        "reported, no target",
    )
    return [result, in_process]


def _call_directly(app: WSGIApplication, count: int) -> float:
    """Call ``app`` ``count`` times with a fresh environ; return calls/s."""
    import io

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        if status != "200 OK":
            raise RuntimeError(f"the application answered {status}")

    template = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(BODY)),
        "wsgi.input_terminated": True,
    }
    started = time.perf_counter()
    for _ in range(count):
        environ = {**template, "wsgi.input": io.BytesIO(BODY)}
        b"".join(app(environ, start_response))  # type: ignore[arg-type]
    measured = rate(count, started)
    close = getattr(app, "close", None)
    if close is not None:
        close()
    return measured


def _load(port: int, count: int) -> float:
    """Send ``count`` POSTs from :data:`CLIENTS` threads; return requests/s."""
    shares = [count // CLIENTS + (i < count % CLIENTS) for i in range(CLIENTS)]
    done = [0] * CLIENTS
    errors: list[str] = []
    deadline = time.monotonic() + ROUND_TIME_LIMIT
    headers = {"Content-Type": "application/json"}

    def sender(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(shares[index]):
                if time.monotonic() > deadline:
                    return
                connection.request("POST", "/", BODY, headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200 or answer != ANSWER:
                    errors.append(f"{response.status} {answer!r}")
                    return
                done[index] += 1
        except OSError as exc:
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ROUND_TIME_LIMIT + 15)
    measured = rate(sum(done), started)
    if errors:
        raise RuntimeError(f"the server answered wrongly: {errors[0]}")
    return measured


@contextlib.contextmanager
def _gunicorn(factory: str) -> Iterator[int]:
    """Run ``benchmarks.wsgi:<factory>`` under gunicorn; yield its port."""
    with tempfile.TemporaryFile() as log:
        process, port = _start(factory, log)
        try:
            yield port
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _start(factory: str, log: Any) -> tuple[subprocess.Popen[bytes], int]:
    for _ in range(5):
        port = _free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--chdir",
                str(ROOT),
                "--bind",
                f"127.0.0.1:{port}",
                *GUNICORN_SETTINGS,
                f"benchmarks.wsgi:{factory}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if _ready(process, port):
            return process, port
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
        log.seek(0)
        if b"Address already in use" not in log.read():
            break
    log.seek(0)
    raise RuntimeError(
        f"gunicorn did not start:\n{log.read().decode(errors='replace')}"
    )


def _ready(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("POST", "/", BODY, {"Content-Type": "application/json"})
            if connection.getresponse().status == 200:
                return True
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.1)
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
