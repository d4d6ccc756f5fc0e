"""Issue 7, test 10: hostile HTTP against the WSGI adapter under gunicorn.

Oversized bodies (announced, chunked, or behind a lying ``Content-Length``),
wrong content types and malformed payloads must each get the status the
README documents, and the worker's memory must stay bounded by the body
limit.  Then signed requests are mutated (one byte flipped in the body or in
a signature header, stale and future timestamps, replayed ids): every one
whose signed content changed must be refused with 401.  A false accept is a
2xx answer to such a request.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.client
import json
import random
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_testing import SCALE, Figures, rss_kib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "wsgi"))
from wsgi_testing import Gunicorn, start_gunicorn

LIMIT = 1024 * 1024
#: The secret gunicorn_apps uses by default: b"secret".
SECRET = b"secret"
TOLERANCE = 300
DEAD_LETTERED = b'{"result": "dead-lettered"}'
ACK = b'{"result": "ack"}'


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Gunicorn]:
    started = start_gunicorn("adapter", tmp_path, workers=1, threads=4)
    yield started
    started.terminate()


@pytest.fixture
def signed_server(tmp_path: Path) -> Iterator[Gunicorn]:
    started = start_gunicorn("signed_adapter", tmp_path, workers=1, threads=4)
    yield started
    started.terminate()


def _raw_exchange(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    """Send raw bytes; return everything answered until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        # Refused before it read everything: the answer is what counts.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and _complete(answer):
                break
        return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def _request_head(
    length: int | None, content_type: str = "application/json", chunked: bool = False
) -> bytes:
    lines = [b"POST / HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines.append(b"Content-Type: " + content_type.encode())
    if length is not None:
        lines.append(b"Content-Length: %d" % length)
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _chunked(body: bytes, size: int = 65536) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


def _worker_pid(directory: Path) -> int:
    for line in (directory / "events.log").read_text().splitlines():
        kind, *rest = line.split()
        if kind == "before":
            return int(rest[0])
    raise AssertionError("the worker recorded no before_processing")


def test_oversized_lying_and_malformed_requests_get_the_documented_status(
    server: Gunicorn, tmp_path: Path, figures: Figures
) -> None:
    ok = json.dumps({"action": "ack"}).encode()
    assert _status(_raw_exchange(server.port, _request_head(len(ok)) + ok)) == 200
    worker = _worker_pid(tmp_path)
    baseline = rss_kib(worker)
    big = b"x" * (LIMIT * 8)
    cases: dict[str, tuple[bytes, int, bool]] = {
        "announced over the limit, no body": (_request_head(LIMIT * 8), 413, False),
        "announced and sent over the limit": (
            _request_head(len(big)) + big,
            413,
            False,
        ),
        "chunked over the limit": (
            _request_head(None, chunked=True) + _chunked(big),
            413,
            False,
        ),
        "chunked under the limit": (
            _request_head(None, chunked=True) + _chunked(ok),
            200,
            False,
        ),
        "length shorter than the body": (
            _request_head(len(ok)) + ok + b"garbage",
            200,
            False,
        ),
        "length longer than the body": (_request_head(len(ok) + 50) + ok, 400, True),
        "text/plain": (_request_head(len(ok), "text/plain") + ok, 415, False),
        "multipart": (
            _request_head(len(ok), "multipart/form-data; boundary=x") + ok,
            415,
            False,
        ),
        "json with charset": (
            _request_head(len(ok), "application/json; charset=utf-8") + ok,
            200,
            False,
        ),
        "+json suffix": (
            _request_head(len(ok), "application/cloudevents+json") + ok,
            200,
            False,
        ),
        "invalid json": (_request_head(5) + b"{nope", 200, False),
        "invalid utf-8": (_request_head(4) + b"\xff\xfe\xfd\xfc", 200, False),
        "json array": (_request_head(2) + b"[]", 200, False),
        "deeply nested json": (
            _request_head(200_000) + b"[" * 100_000 + b"]" * 100_000,
            200,
            False,
        ),
    }
    statuses = {}
    memory = []
    for name, (data, _, half_close) in cases.items():
        statuses[name] = _status(
            _raw_exchange(server.port, data, half_close=half_close)
        )
        memory.append(rss_kib(worker))

    expected = {name: status for name, (_, status, _) in cases.items()}
    handled_sizes = [
        int(line.split()[2])
        for line in (tmp_path / "events.log").read_text().splitlines()
        if line.startswith("handled")
    ]
    figures["cases"] = statuses
    figures["worker_rss_baseline_kib"] = baseline
    figures["worker_rss_max_kib"] = max(memory)

    assert statuses == expected
    # The bytes past a lying Content-Length never reached a handler.
    assert set(handled_sizes) == {len(ok)}
    assert max(memory) - baseline < 4 * LIMIT // 1024
    assert server.process.poll() is None


def _sign(webhook_id: str, timestamp: str, body: bytes) -> str:
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    return (
        "v1,"
        + base64.b64encode(hmac.new(SECRET, signed, hashlib.sha256).digest()).decode()
    )


def _signature_matches(
    header: str, webhook_id: str, timestamp: str, body: bytes
) -> bool:
    """The oracle: does any v1 entry decode to the right MAC for this content?"""
    expected = base64.b64decode(_sign(webhook_id, timestamp, body)[3:])
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        try:
            if version == "v1" and base64.b64decode(encoded, validate=True) == expected:
                return True
        except (binascii.Error, ValueError):
            continue
    return False


def _flip(text: bytes, rng: random.Random, printable: bool) -> bytes:
    position = rng.randrange(len(text))
    alphabet = range(0x21, 0x7F) if printable else range(256)
    replacement = rng.choice([b for b in alphabet if b != text[position]])
    return text[:position] + bytes([replacement]) + text[position + 1 :]


def test_mutated_signed_requests_are_never_accepted(
    signed_server: Gunicorn, tmp_path: Path, figures: Figures
) -> None:
    rng = random.Random(f"http-{SCALE.name}")
    connection = http.client.HTTPConnection("127.0.0.1", signed_server.port, timeout=20)
    kinds = (
        "body",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "stale",
        "future",
    )
    outcomes: Counter[tuple[str, int]] = Counter()
    false_accepts: list[str] = []
    equivalent_signatures = 0

    def send(webhook_id: str, timestamp: str, signature: str, body: bytes) -> int:
        connection.request(
            "POST",
            "/webhooks",
            body,
            {
                "Content-Type": "application/json",
                "webhook-id": webhook_id,
                "webhook-timestamp": timestamp,
                "webhook-signature": signature,
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status

    started = time.monotonic()
    for number in range(SCALE.http_mutations):
        kind = kinds[number % len(kinds)]
        webhook_id = f"msg_{number}"
        timestamp = str(int(time.time()))
        body = json.dumps({"action": "ack", "n": number}).encode()
        signature = _sign(webhook_id, timestamp, body)
        if kind == "body":
            body = _flip(body, rng, printable=False)
        elif kind == "webhook-id":
            webhook_id = _flip(webhook_id.encode(), rng, True).decode()
        elif kind == "webhook-timestamp":
            timestamp = _flip(timestamp.encode(), rng, True).decode()
        elif kind == "webhook-signature":
            signature = _flip(signature.encode(), rng, True).decode()
        else:
            skew = rng.randint(TOLERANCE + 2, 10**7)
            timestamp = str(int(time.time()) + (skew if kind == "future" else -skew))
            signature = _sign(webhook_id, timestamp, body)
        # Only a different base64 spelling of the same MAC may pass.
        legitimate = kind.startswith("webhook-signature") and _signature_matches(
            signature, webhook_id, timestamp, body
        )
        equivalent_signatures += legitimate
        status = send(webhook_id, timestamp, signature, body)
        outcomes[(kind, status)] += 1
        if 200 <= status < 300 and not legitimate:
            false_accepts.append(f"{kind} #{number}: {status}")

    # A replayed id within the tolerance is accepted again: the transport id
    # is the same, for the handler to drop the second copy.
    timestamp = str(int(time.time()))
    body = b'{"action": "ack", "n": "replayed"}'
    replays = [
        send("msg_replayed", timestamp, _sign("msg_replayed", timestamp, body), body)
        for _ in range(3)
    ]
    elapsed = time.monotonic() - started
    connection.close()
    transport_ids = [
        line.split()[3]
        for line in (tmp_path / "events.log").read_text().splitlines()
        if line.startswith("handled")
    ]
    figures["mutated_requests"] = SCALE.http_mutations
    figures["false_accepts"] = len(false_accepts)
    figures["equivalent_signature_spellings_accepted"] = equivalent_signatures
    figures["statuses"] = {
        f"{kind} {status}": count for (kind, status), count in sorted(outcomes.items())
    }
    figures["requests_per_second"] = round((SCALE.http_mutations + 3) / elapsed)

    assert false_accepts == []
    assert {status for (_, status) in outcomes} <= {401, 200}
    assert outcomes[("webhook-signature", 200)] == equivalent_signatures
    assert sum(outcomes.values()) == SCALE.http_mutations
    assert replays == [200, 200, 200]
    assert transport_ids.count("msg_replayed") == 3
    assert len(transport_ids) == 3 + equivalent_signatures
