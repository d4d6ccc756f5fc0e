"""The processing context: once per process, lazily, ended by close() or exit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from types import FrameType

import pytest
from wsgi_testing import call, free_port, make_environ

import missive_wsgi.adapter
from missive import HandlingContext, JSONMessage, ProcessingContext, Processor
from missive_wsgi import WSGIAdapter


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def processor(events: list[str]) -> Processor[JSONMessage]:
    processor: Processor[JSONMessage] = Processor()

    @processor.before_processing
    def before(ctx: ProcessingContext[JSONMessage]) -> None:
        events.append("before")

    @processor.after_processing
    def after(ctx: ProcessingContext[JSONMessage]) -> None:
        events.append("after")

    @processor.handle_for(lambda message: True)
    def handle(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
        ctx.ack()

    return processor


def post() -> dict[str, object]:
    return make_environ("POST", "/", b"{}")


def test_nothing_runs_before_the_first_request(
    processor: Processor[JSONMessage], events: list[str]
) -> None:
    adapter = WSGIAdapter(JSONMessage, processor)

    adapter.close()

    assert events == []


def test_before_processing_runs_once_for_many_requests(
    processor: Processor[JSONMessage], events: list[str]
) -> None:
    adapter = WSGIAdapter(JSONMessage, processor)

    statuses = [call(adapter, post()).status for _ in range(20)]

    assert statuses == [200] * 20
    assert events == ["before"]
    adapter.close()


def test_concurrent_first_requests_start_the_context_once(
    processor: Processor[JSONMessage], events: list[str]
) -> None:
    adapter = WSGIAdapter(JSONMessage, processor)
    barrier = threading.Barrier(20, timeout=10)
    statuses: list[int] = []

    def send() -> None:
        barrier.wait()
        statuses.append(call(adapter, post()).status)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert statuses == [200] * 20
    assert events == ["before"]
    adapter.close()


def test_close_runs_after_processing_once(
    processor: Processor[JSONMessage], events: list[str]
) -> None:
    adapter = WSGIAdapter(JSONMessage, processor)
    call(adapter, post())

    adapter.close()
    adapter.close()

    assert events == ["before", "after"]


def test_the_health_check_starts_the_context(
    processor: Processor[JSONMessage], events: list[str]
) -> None:
    adapter = WSGIAdapter(JSONMessage, processor)

    response = call(adapter, make_environ("GET", "/healthz"))

    assert response.status == 200
    assert events == ["before"]
    adapter.close()


def test_failing_before_processing_answers_503_then_is_retried(
    processor: Processor[JSONMessage],
    events: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(missive_wsgi.adapter, "START_RETRY_SECONDS", 0.2)
    attempts: list[int] = []

    @processor.before_processing
    def flaky(ctx: ProcessingContext[JSONMessage]) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("database not up yet")

    adapter = WSGIAdapter(JSONMessage, processor)

    first = call(adapter, post())
    health = call(adapter, make_environ("GET", "/healthz"))
    time.sleep(0.3)
    later = call(adapter, post())

    assert (first.status, health.status, later.status) == (503, 503, 200)
    assert len(attempts) == 2
    adapter.close()


def test_sigterm_wraps_the_servers_handler_and_starts_draining(
    processor: Processor[JSONMessage],
) -> None:
    received: list[int] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, server_handler)
    try:
        adapter = WSGIAdapter(JSONMessage, processor)
        before = call(adapter, make_environ("GET", "/healthz")).status

        signal.raise_signal(signal.SIGTERM)

        after = call(adapter, make_environ("GET", "/healthz")).status
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert (before, after) == (200, 503)
    assert received == [signal.SIGTERM]
    adapter.close()


def test_default_sigterm_action_is_left_alone(
    processor: Processor[JSONMessage],
) -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        WSGIAdapter(JSONMessage, processor)
        installed = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert installed == signal.SIG_DFL


# Processes: forks and exits, in a child interpreter so pytest is not forked.

_FORK_SCRIPT = """
import os, sys
from missive import JSONMessage, Processor
from missive_wsgi import WSGIAdapter
from wsgiref.util import setup_testing_defaults
import io

log = open(sys.argv[1], "a", buffering=1)
processor = Processor()
processor.before_processing(lambda ctx: log.write(f"before {os.getpid()}\\n"))
processor.after_processing(lambda ctx: log.write(f"after {os.getpid()}\\n"))
processor.handle_for(lambda m: True)(lambda m, ctx: ctx.ack())
adapter = WSGIAdapter(JSONMessage, processor)

def request():
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/",
               "CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}")}
    setup_testing_defaults(environ)
    statuses = []
    adapter(environ, lambda status, headers: statuses.append(status))
    log.write(f"answer {os.getpid()} {statuses[0]}\\n")

log.write(f"parent {os.getpid()}\\n")
request()
for serves in (False, True):
    pid = os.fork()
    if pid == 0:
        log.write(f"child {os.getpid()} serves={serves}\\n")
        if serves:
            request()
        sys.exit(0)  # a normal exit: atexit handlers run
    os.waitpid(pid, 0)
request()
"""


def test_forked_children_start_their_own_context_and_exit_ends_each(
    tmp_path: Path,
) -> None:
    script = tmp_path / "forking.py"
    script.write_text(textwrap.dedent(_FORK_SCRIPT))
    log = tmp_path / "events.log"

    subprocess.run([sys.executable, str(script), str(log)], check=True, timeout=60)

    lines = [line.split() for line in log.read_text().splitlines()]
    parent = next(pid for kind, pid, *_ in lines if kind == "parent")
    idle, serving = (pid for kind, pid, *_ in lines if kind == "child")
    events = [(kind, pid) for kind, pid, *_ in lines if kind in ("before", "after")]
    assert events.count(("before", parent)) == 1
    assert events.count(("after", parent)) == 1
    assert events.count(("before", serving)) == 1
    assert events.count(("after", serving)) == 1
    assert not any(pid == idle for _, pid in events)
    assert [rest for kind, pid, *rest in lines if kind == "answer"] == [
        ["200", "OK"]
    ] * 3
    assert events[-1] == ("after", parent)


# The development server.


def test_run_serves_over_http_until_stopped(
    processor: Processor[JSONMessage], events: list[str]
) -> None:
    adapter = WSGIAdapter(JSONMessage, processor)
    port = free_port()
    server = threading.Thread(target=adapter.run, kwargs={"port": port})
    server.start()
    try:
        response = _post_when_up(f"http://127.0.0.1:{port}/", b'{"x": 1}')
    finally:
        adapter.stop()
        server.join(timeout=10)

    assert response == (200, b'{"result": "ack"}')
    assert not server.is_alive()
    assert events == ["before", "after"]


def _post_when_up(url: str, body: bytes) -> tuple[int, bytes]:
    deadline = time.monotonic() + 10
    while True:
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, answer.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
