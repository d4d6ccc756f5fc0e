"""The WSGI adapter passes the conformance kit, served over real HTTP.

``run()`` serves with the development server on a free loopback port; each
message is a POST, and the answer is what the transport recorded: 200 for an
ack or a dead letter, 500 ``nack`` for a nack.
"""

from __future__ import annotations

import http.client
import threading
from typing import Any

from wsgi_testing import free_port

from missive import Processor, RawMessage
from missive.adapters import Adapter
from missive.testing import AdapterContract, TransportOutcome
from missive_wsgi import WSGIAdapter

pytest_plugins = ["missive.testing"]


class _Post:
    """A POST sent from its own thread; the answer arrives when it arrives."""

    def __init__(self, port: int, body: bytes) -> None:
        self.answer: tuple[int, bytes] | None = None
        self._port = port
        self._body = body
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

    def _send(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=30)
        try:
            connection.request(
                "POST", "/", self._body, {"Content-Type": "application/octet-stream"}
            )
            response = connection.getresponse()
            self.answer = (response.status, response.read())
        except OSError:
            self.answer = (0, b"")
        finally:
            connection.close()


class TestWSGIAdapter(AdapterContract):
    def make_adapter(self, processor: Processor[Any]) -> Adapter[Any]:
        self.port = free_port()
        return WSGIAdapter.from_options(RawMessage, processor, {"port": str(self.port)})

    def publish(self, adapter: Adapter[Any], payload: bytes) -> object:
        return _Post(self.port, payload)

    def transport_outcome(
        self, adapter: Adapter[Any], receipt: object
    ) -> TransportOutcome:
        assert isinstance(receipt, _Post)
        if receipt.answer is None:
            return None
        status, body = receipt.answer
        if status == 200 and body in (
            b'{"result": "ack"}',
            b'{"result": "dead-lettered"}',
        ):
            return "acked"
        if status == 500 and body == b'{"result": "nack"}':
            return "nacked"
        return None

    def ready(self, adapter: Adapter[Any]) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()
