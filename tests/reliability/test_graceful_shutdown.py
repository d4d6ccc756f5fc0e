"""Issue 7, test 6: SIGTERM while 20 slow messages are in flight.

Streams: a ``missive run`` process has fetched a batch of 20 slow entries
when SIGTERM arrives.  The entry being handled finishes and is acked, the
rest of the batch stays pending for the next run (a documented limit), and
nothing new is fetched.  A handler that outlives the supervisor's stop
timeout is killed, and its entry is redelivered by the next run.

WSGI: gunicorn serves 20 slow requests at once when its master gets SIGTERM.
Every one of them is answered and acked, no new connection is accepted, and
gunicorn exits 0 within its graceful timeout.  A request that outlives the
timeout gets no answer, so its sender delivers it again later.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_testing import (
    Figures,
    PersistentRedis,
    Record,
    pending_count,
    publish_numbered,
    start_missive_run,
    stop_process,
    wait_until,
)

from missive_sqlite_dlq import SQLiteDLQ

IN_FLIGHT = 20
GROUP = "shutdown"

# The WSGI tests' gunicorn helpers and applications are reused.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "wsgi"))
from wsgi_testing import start_gunicorn  # noqa: E402


def _stream_processor(
    server: PersistentRedis, stream: str, tmp_path: Path, sleep: float
) -> subprocess.Popen[bytes]:
    return start_missive_run(
        "reliability_apps:stream_processor",
        "redis-streams",
        {
            "streams": stream,
            "group": GROUP,
            "consumer": "worker",
            "url": server.url,
            "batch_size": IN_FLIGHT,
            "block_ms": 200,
        },
        env={
            "MISSIVE_REL_RECORD": str(tmp_path / "record"),
            "MISSIVE_REL_DLQ": str(tmp_path / "dlq.db"),
            "MISSIVE_REL_SLEEP": str(sleep),
        },
        log=tmp_path / "processor.log",
    )


def test_stream_sigterm_finishes_the_message_in_hand_and_fetches_nothing_new(
    shared_private_redis: PersistentRedis, tmp_path: Path, figures: Figures
) -> None:
    client = shared_private_redis.client()
    stream = f"reliability:shutdown:{time.time_ns()}"
    SQLiteDLQ(tmp_path / "dlq.db").close()
    record = Record(tmp_path / "record")
    published = publish_numbered(client, stream, range(IN_FLIGHT))
    process = _stream_processor(shared_private_redis, stream, tmp_path, sleep=0.3)
    try:
        wait_until(lambda: record.count("S") >= 3, timeout=30)
        signalled_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        # Published after the signal: must not be fetched by this process.
        late = publish_numbered(client, stream, range(IN_FLIGHT, IN_FLIGHT + 5))
        exit_status = process.wait(timeout=10)
        stop_seconds = time.monotonic() - signalled_at
        started_ids = {m for m, _, _ in record.of("S")}
        handled_ids = set(record.refresh().handled)
        pending = client.xpending_range(stream, GROUP, "-", "+", 100)
        pending_ids = {f"{stream}/{p['message_id'].decode()}" for p in pending}

        # The next run handles what the first one left.
        restarted = _stream_processor(shared_private_redis, stream, tmp_path, 0.001)
        wait_until(
            lambda: (
                set(record.refresh().handled) >= set(published) | set(late)
                and pending_count(client, stream, GROUP) == 0
            ),
            timeout=60,
        )
        assert stop_process(restarted) == 0
    finally:
        for started in (process, locals().get("restarted")):
            if started is not None and started.poll() is None:
                started.kill()
                started.wait(timeout=10)
        client.delete(stream)
        client.close()

    figures["in_flight_at_signal"] = IN_FLIGHT
    figures["seconds_from_sigterm_to_exit"] = round(stop_seconds, 2)
    figures["handled_before_exit"] = len(handled_ids)
    figures["left_pending_for_next_run"] = len(pending_ids)

    assert exit_status == 0
    # Everything started was finished and acked; the rest stays pending.
    assert started_ids == handled_ids
    assert not pending_ids & handled_ids
    assert pending_ids == set(published) - handled_ids
    assert not pending_ids & set(late)
    assert stop_seconds < 0.3 * 2 + 2


def test_stream_handler_outliving_the_stop_timeout_is_redelivered(
    shared_private_redis: PersistentRedis, tmp_path: Path, figures: Figures
) -> None:
    client = shared_private_redis.client()
    stream = f"reliability:shutdown-slow:{time.time_ns()}"
    SQLiteDLQ(tmp_path / "dlq.db").close()
    record = Record(tmp_path / "record")
    published = publish_numbered(client, stream, range(3))
    stop_timeout = 1.0
    process = _stream_processor(shared_private_redis, stream, tmp_path, sleep=5.0)
    try:
        wait_until(lambda: record.count("S") == 1, timeout=30)
        first = record.of("S")[0][0]
        process.send_signal(signal.SIGTERM)
        # The supervisor's stop timeout (systemd, Kubernetes) runs out.
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=stop_timeout)
        process.kill()
        process.wait(timeout=10)
        handled_before_restart = set(record.refresh().handled)

        restarted = _stream_processor(shared_private_redis, stream, tmp_path, 0.01)
        wait_until(
            lambda: (
                set(record.refresh().handled) >= set(published)
                and pending_count(client, stream, GROUP) == 0
            ),
            timeout=60,
        )
        assert stop_process(restarted) == 0
    finally:
        for started in (process, locals().get("restarted")):
            if started is not None and started.poll() is None:
                started.kill()
                started.wait(timeout=10)
        client.delete(stream)
        client.close()

    figures["stop_timeout_seconds"] = stop_timeout
    assert first not in handled_before_restart
    assert record.refresh().handled[first] == 1


def _post(port: int, payload: dict[str, Any], timeout: float = 30) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            "POST", "/", json.dumps(payload), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _events(directory: Path) -> list[list[str]]:
    path = directory / "events.log"
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()]


def _send_concurrently(
    port: int, payloads: list[dict[str, Any]]
) -> tuple[list[threading.Thread], dict[str, Any]]:
    answers: dict[str, Any] = {}

    def send(payload: dict[str, Any]) -> None:
        try:
            answers[payload["n"]] = _post(port, payload)
        except (OSError, http.client.HTTPException) as exc:
            answers[payload["n"]] = exc

    threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    return threads, answers


@pytest.mark.parametrize("outlives", [False, True], ids=["within", "outliving"])
def test_gunicorn_sigterm_answers_every_request_in_flight(
    outlives: bool, tmp_path: Path, figures: Figures
) -> None:
    graceful = 2 if outlives else 8
    sleep = 4 if outlives else 1.5
    server = start_gunicorn(
        "adapter",
        tmp_path,
        workers=1,
        threads=IN_FLIGHT,
        args=("--graceful-timeout", str(graceful)),
    )
    payloads = [
        {"action": "ack", "sleep": sleep, "n": f"m{i}"} for i in range(IN_FLIGHT)
    ]
    try:
        threads, answers = _send_concurrently(server.port, payloads)
        wait_until(
            lambda: sum(e[0] == "started" for e in _events(tmp_path)) == IN_FLIGHT,
            timeout=30,
        )
        signalled_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: _refused(server.port), timeout=5)
        exit_status = server.process.wait(timeout=graceful + 10)
        exit_seconds = time.monotonic() - signalled_at
        for thread in threads:
            thread.join(timeout=30)
    finally:
        server.kill()

    acked = [
        n for n, answer in answers.items() if answer == (200, b'{"result": "ack"}')
    ]
    unanswered = sorted(n for n in answers if n not in acked)
    figures["graceful_timeout_seconds"] = graceful
    figures["handler_seconds"] = sleep
    figures["acked"] = len(acked)
    figures["unanswered"] = len(unanswered)
    figures["seconds_from_sigterm_to_exit"] = round(exit_seconds, 2)

    assert len(answers) == IN_FLIGHT
    assert exit_seconds < graceful + 2
    if not outlives:
        assert exit_status == 0
        assert unanswered == []
        return

    # Nothing was acked to the sender: it retries, and a new server acks.
    assert acked == []
    retry = start_gunicorn("adapter", tmp_path, workers=1, threads=IN_FLIGHT)
    try:
        retried = [_post(retry.port, {"action": "ack", "n": n}) for n in unanswered]
    finally:
        retry.terminate()
    assert retried == [(200, b'{"result": "ack"}')] * IN_FLIGHT


def _refused(port: int) -> bool:
    """Whether a new connection is refused (the listener is closed)."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
        connection.close()
    except ConnectionRefusedError:
        return True
    except (OSError, http.client.HTTPException):
        return False
    return status == 503
