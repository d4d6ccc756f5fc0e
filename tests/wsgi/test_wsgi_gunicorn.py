"""End to end: the adapter under a real gunicorn, over real loopback HTTP."""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from wsgi_testing import Gunicorn, GunicornFactory, start_gunicorn

from missive_wsgi import GitHubSignature, StandardWebhooksSignature

MiB = 1024 * 1024
NEW_SECRET = "whsec_bmV3IHNlY3JldCwgcm90YXRlZCBpbg=="
OLD_SECRET = "whsec_b2xkIHNlY3JldCwgc3RpbGwgYWNjZXB0ZWQ="
SECRETS_ENV = {"MISSIVE_TEST_SECRETS": f"{NEW_SECRET} {OLD_SECRET}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """Two threaded workers serving the adapter with a DLQ."""
    directory = tmp_path_factory.mktemp("gunicorn")
    server = start_gunicorn("adapter", directory, workers=2, threads=8)
    yield server
    server.terminate()


def request(
    server: Gunicorn,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def post_json(
    server: Gunicorn, payload: Any, path: str = "/", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    return request(
        server, "POST", path, body, {"Content-Type": "application/json", **headers}
    )


def events(server: Gunicorn) -> list[list[str]]:
    path = server.log_path.parent / "events.log"
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()]


def raw_exchange(
    server: Gunicorn, head: bytes, body_parts: Iterable[bytes] = (), *, timeout: float
) -> bytes:
    """Send a request byte for byte, keep the connection open, and return the
    status line of the first answer.

    The body is sent from a thread, so that an answer given before the body
    is complete is read while sending goes on (or fails, when the server
    closes: that is allowed).
    """
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        sock.sendall(head)

        def send_body() -> None:
            try:
                for part in body_parts:
                    sock.sendall(part)
            except OSError:
                pass

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        sender.join(timeout)
        return received.partition(b"\r\n")[0]
    finally:
        sock.close()


# Outcomes.


def test_acked_message_is_200_ack(server: Gunicorn) -> None:
    status, _, body = post_json(server, {"action": "ack"})

    assert (status, body) == (200, b'{"result": "ack"}')


def test_nacked_message_is_500_nack_with_retry_after(server: Gunicorn) -> None:
    status, headers, body = post_json(server, {"action": "nack"})

    assert (status, body) == (500, b'{"result": "nack"}')
    assert headers["Retry-After"] == "5"


def test_failing_handler_dead_letters_and_is_200(server: Gunicorn) -> None:
    status, _, body = post_json(server, {"action": "explode"})

    assert (status, json.loads(body)) == (200, {"result": "dead-lettered"})


def test_undecodable_payload_is_dead_lettered(server: Gunicorn) -> None:
    status, _, body = request(
        server, "POST", "/", b"{nope", {"Content-Type": "application/json"}
    )

    assert (status, json.loads(body)) == (200, {"result": "dead-lettered"})


def test_dlq_write_failure_is_503_so_the_sender_retries(server: Gunicorn) -> None:
    status, headers, _ = post_json(server, {"action": "explode", "unstorable": True})

    assert status == 503
    assert "Retry-After" in headers


def test_transport_id_is_the_webhook_id(server: Gunicorn) -> None:
    post_json(server, {"action": "ack"}, **{"webhook-id": "msg_e2e_transport"})

    assert any(line[-1] == "msg_e2e_transport" for line in events(server))


def test_fifty_concurrent_senders_each_get_their_own_answer(server: Gunicorn) -> None:
    expected = {
        "ack": (200, {"result": "ack"}),
        "nack": (500, {"result": "nack"}),
        "explode": (200, {"result": "dead-lettered"}),
    }
    barrier = threading.Barrier(50, timeout=20)
    mismatches: list[str] = []
    answered = Counter[str]()
    lock = threading.Lock()

    def sender(index: int) -> None:
        rng = random.Random(index)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        barrier.wait()
        try:
            for round_ in range(4):
                action = rng.choice(list(expected))
                body = json.dumps({"action": action, "n": f"{index}-{round_}"})
                connection.request(
                    "POST", "/", body, {"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                got = (response.status, json.loads(response.read()))
                with lock:
                    answered[action] += 1
                    if got != expected[action]:
                        mismatches.append(f"{index}-{round_} {action}: {got}")
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert mismatches == []
    assert sum(answered.values()) == 200
    assert all(answered[action] > 0 for action in expected)


# Refusals.


def test_get_on_the_path_is_405_with_allow(server: Gunicorn) -> None:
    status, headers, _ = request(server, "GET", "/")

    assert status == 405
    assert headers["Allow"] == "POST"


def test_unknown_path_is_404(server: Gunicorn) -> None:
    status, _, _ = post_json(server, {"action": "ack"}, path="/elsewhere")

    assert status == 404


def test_other_content_type_is_415(server: Gunicorn) -> None:
    status, _, _ = request(
        server, "POST", "/", b'{"action": "ack"}', {"Content-Type": "text/plain"}
    )

    assert status == 415


def test_body_over_the_limit_with_content_length_is_413(server: Gunicorn) -> None:
    head = (
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (MiB + 1)
    )

    status = raw_exchange(server, head, [b"x" * (MiB + 1)], timeout=10)

    assert status.startswith(b"HTTP/1.1 413")


def test_announced_length_over_the_limit_is_413_without_waiting_for_the_body(
    server: Gunicorn,
) -> None:
    head = (
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n{" % (50 * MiB)
    )

    # Only one byte of the 50 MiB is ever sent: reading would hang.
    status = raw_exchange(server, head, timeout=5)

    assert status.startswith(b"HTTP/1.1 413")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_chunked_body_over_the_limit_is_413_reading_no_more_than_the_limit(
    server: Gunicorn,
) -> None:
    head = (
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    # Just over 1 MiB, and no last chunk: a reader that wants the end hangs.
    parts = [_chunk(b"x" * (64 * 1024)) for _ in range(17)]

    status = raw_exchange(server, head, parts, timeout=5)

    assert status.startswith(b"HTTP/1.1 413")


def test_chunked_body_under_the_limit_is_processed(server: Gunicorn) -> None:
    head = (
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nwebhook-id: chunked-ok\r\n\r\n"
    )
    parts = [_chunk(b'{"action": '), _chunk(b'"ack"}'), b"0\r\n\r\n"]

    status = raw_exchange(server, head, parts, timeout=5)

    assert status.startswith(b"HTTP/1.1 200")
    assert ["17", "chunked-ok"] in [line[2:] for line in events(server)]


def test_bytes_past_a_lying_content_length_never_reach_the_handler(
    server: Gunicorn,
) -> None:
    head = (
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"webhook-id: lying-length\r\nContent-Length: 17\r\n\r\n"
    )
    parts = [b'{"action": "ack"}', b"x" * (2 * MiB)]

    status = raw_exchange(server, head, parts, timeout=5)

    assert status.startswith(b"HTTP/1.1 200")
    handled = [line[2:] for line in events(server) if line[-1] == "lying-length"]
    assert handled == [["17", "lying-length"]]


# Handler failures without a DLQ.


def test_handler_exception_without_dlq_is_500_logged_and_the_worker_serves_on(
    gunicorn: GunicornFactory,
) -> None:
    server = gunicorn("no_dlq_adapter", workers=1, threads=2)

    failed = post_json(server, {"action": "explode"})
    after = post_json(server, {"action": "ack"})

    assert (failed[0], json.loads(failed[2])) == (500, {"result": "error"})
    assert after[0] == 200
    log = server.log
    assert "Traceback" in log
    assert "handler failed on purpose: explode" in log
    assert log.count("Booting worker") == 1


# Signatures.


def _standard_headers(secret: str, body: bytes, *, age: int = 0) -> dict[str, str]:
    timestamp = int(time.time()) - age
    signature = StandardWebhooksSignature(secret).sign("msg_e2e", timestamp, body)
    return {
        "Content-Type": "application/json",
        "webhook-id": "msg_e2e",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_standard_webhooks_signatures_over_http(gunicorn: GunicornFactory) -> None:
    server = gunicorn("signed_adapter", env=SECRETS_ENV)
    body = b'{"action": "ack"}'
    wrong = "whsec_" + "d3Jvbmcgc2VjcmV0IQ=="

    valid = request(
        server, "POST", "/webhooks", body, _standard_headers(NEW_SECRET, body)
    )
    rotated = request(
        server, "POST", "/webhooks", body, _standard_headers(OLD_SECRET, body)
    )
    wrong_key = request(
        server, "POST", "/webhooks", body, _standard_headers(wrong, body)
    )
    stale = request(
        server, "POST", "/webhooks", body, _standard_headers(NEW_SECRET, body, age=600)
    )
    unsigned = request(
        server, "POST", "/webhooks", body, {"Content-Type": "application/json"}
    )

    assert (valid[0], rotated[0]) == (200, 200)
    for refused in (wrong_key, stale, unsigned):
        assert (refused[0], json.loads(refused[2])) == (401, {"error": "unauthorized"})
    handled = [line for line in events(server) if line[0] == "handled"]
    assert len(handled) == 2
    log = server.log
    assert log.count("invalid signature") == 3
    assert "tolerance" in log
    for secret in (NEW_SECRET, OLD_SECRET, wrong):
        assert secret.removeprefix("whsec_") not in log


def test_github_signatures_over_http(gunicorn: GunicornFactory) -> None:
    server = gunicorn("github_adapter", env=SECRETS_ENV)
    body = b'{"action": "ack"}'
    headers = {"Content-Type": "application/json", "X-GitHub-Delivery": "d-1"}

    valid = request(
        server,
        "POST",
        "/",
        body,
        {**headers, "X-Hub-Signature-256": GitHubSignature(NEW_SECRET).sign(body)},
    )
    rotated = request(
        server,
        "POST",
        "/",
        body,
        {**headers, "X-Hub-Signature-256": GitHubSignature(OLD_SECRET).sign(body)},
    )
    wrong = request(
        server,
        "POST",
        "/",
        body,
        {**headers, "X-Hub-Signature-256": GitHubSignature("guess").sign(body)},
    )

    assert (valid[0], rotated[0], wrong[0]) == (200, 200, 401)
    assert [line[-1] for line in events(server) if line[0] == "handled"] == ["d-1"] * 2


# Lifecycle.


def test_hooks_run_once_per_worker(gunicorn: GunicornFactory) -> None:
    server = gunicorn("adapter", workers=2, threads=4)

    statuses = [post_json(server, {"action": "ack"})[0] for _ in range(40)]
    exit_status = server.terminate()

    assert statuses == [200] * 40
    assert exit_status == 0
    lines = events(server)
    before = Counter(pid for kind, pid, *_ in lines if kind == "before")
    after = Counter(pid for kind, pid, *_ in lines if kind == "after")
    handled_by = {pid for kind, pid, *_ in lines if kind == "handled"}
    assert 1 <= len(before) <= 2
    assert set(before.values()) == {1}
    assert after == before
    assert handled_by <= set(before)


def test_sigterm_drains_healthz_503_and_the_request_in_flight_completes(
    gunicorn: GunicornFactory,
) -> None:
    server = gunicorn("adapter", workers=1, threads=4)
    # Kept-alive connections opened before the signal: the worker still
    # reads them while it drains, and only them.
    spares = [
        http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for _ in range(3)
    ]
    for connection in spares:
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b'{"status": "ok"}'
    in_flight: list[tuple[int, dict[str, str], bytes]] = []
    slow = threading.Thread(
        target=lambda: in_flight.append(
            post_json(server, {"action": "ack", "sleep": 2, "n": "slow"})
        )
    )
    slow.start()
    _wait_for(lambda: ["started", "slow"] in events(server), timeout=10)

    server.process.terminate()
    health = _health_while_draining(spares)
    slow.join(timeout=20)
    exit_status = server.process.wait(timeout=20)

    assert health == 503
    assert in_flight and in_flight[0][0] == 200
    assert in_flight[0][2] == b'{"result": "ack"}'
    assert exit_status == 0
    kinds = [line[0] for line in events(server)]
    assert kinds.count("before") == kinds.count("after") == 1
    assert kinds.index("after") > kinds.index("handled")
    for connection in spares:
        connection.close()


def _health_while_draining(spares: list[http.client.HTTPConnection]) -> int | None:
    """Ask for the health on kept-alive connections until one says 503."""
    deadline = time.monotonic() + 5
    for connection in spares:
        while time.monotonic() < deadline:
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
            except OSError:
                break
            if response.status == 503:
                return 503
            if response.will_close:
                break
            time.sleep(0.05)
    return None


def _wait_for(condition: Any, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the server")
        time.sleep(0.05)
