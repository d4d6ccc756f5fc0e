"""Core's built-ins pass the conformance kit that plugin authors use.

The stdin adapter, the memory DLQ (and a plain ``dict``, which the docs say
is a DLQ too), and the raw, json and dict message formats.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import missive.adapters
import missive.messages
from missive import DictMessage, JSONMessage, Message, Processor, RawMessage
from missive.adapters import Adapter
from missive.adapters.stdin import StdinAdapter
from missive.dlq.memory import MemoryDLQ
from missive.plugins import PluginRegistry, hookimpl
from missive.testing import (
    AdapterContract,
    DLQContract,
    MessageFormatContract,
    TransportOutcome,
    register_plugin,
)

pytest_plugins = ["missive.testing"]


class TestStdinAdapter(AdapterContract):
    """One line of a real pipe per message; ack and nack are counted."""

    @pytest.fixture(autouse=True)
    def _pipe(self) -> Iterator[None]:
        read_fd, write_fd = os.pipe()
        self.reader: IO[bytes] = os.fdopen(read_fd, "rb")
        self.writer: IO[bytes] = os.fdopen(write_fd, "wb", buffering=0)
        yield
        for stream in (self.writer, self.reader):
            if not stream.closed:
                stream.close()

    def make_adapter(self, processor: Processor[Any]) -> Adapter[Any]:
        return StdinAdapter(RawMessage, processor, self.reader)

    def publish(self, adapter: Adapter[Any], payload: bytes) -> object:
        self.writer.write(payload + b"\n")
        return None

    def transport_outcome(
        self, adapter: Adapter[Any], receipt: object
    ) -> TransportOutcome:
        # A pipe cannot take a line back: the adapter's counters are all
        # there is, and each check settles one message.
        assert isinstance(adapter, StdinAdapter)
        if adapter.acked_count:
            return "acked"
        if adapter.nacked_count:
            return "nacked"
        return None

    def wake(self, adapter: Adapter[Any]) -> None:
        # stop() from another thread takes effect at the next line: end input.
        if not self.writer.closed:
            self.writer.close()


class TestMemoryDLQ(DLQContract):
    def make_dlq(self, tmp_path: Path) -> MemoryDLQ[Message]:
        return MemoryDLQ()


class TestDictAsDLQ(DLQContract):
    """The docs promise that any ``dict`` is a DLQ; it has no ``oldest()``."""

    has_oldest = False

    def make_dlq(self, tmp_path: Path) -> dict[bytes, tuple[Message, str]]:
        return {}


class TestRawFormat(MessageFormatContract):
    message_cls = RawMessage
    valid_payloads = (b"", b"plain text", bytes(range(256)))


class TestJSONFormat(MessageFormatContract):
    message_cls = JSONMessage
    valid_payloads = (b'{"type": "order", "id": 7}', b"[1, 2.5, null]", b'"\\u00e9"')
    invalid_payloads = (b"{not json", b"\xff\xfe", b"")

    def decode(self, message: Message) -> object:
        assert isinstance(message, JSONMessage)
        return message.get_json()


class TestDictFormat(MessageFormatContract):
    message_cls = DictMessage
    valid_payloads = (b'{"type": "order", "id": 7}', b"{}")
    invalid_payloads = (b"[1, 2]", b"{not json", b'"text"')

    def decode(self, message: Message) -> object:
        assert isinstance(message, DictMessage)
        return message.contents()


# The kit's own promises: opt-in, and plugins registered without installing.


def test_importing_missive_does_not_import_pytest_or_the_kit(run_python: Any) -> None:
    result = run_python(
        "import sys, missive, missive.adapters, missive.dlq, missive.messages\n"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('pytest', '_pytest') or m == 'missive.testing'))"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_kit_is_not_a_pytest_entry_point_plugin() -> None:
    pytest11 = importlib.metadata.entry_points(group="pytest11")

    assert [ep for ep in pytest11 if ep.value.startswith("missive")] == []


class _EchoFormat(RawMessage):
    format_name = "echo"


class _EchoPlugin:
    @hookimpl
    def missive_message_formats(self) -> dict[str, type[Message]]:
        return {"echo": _EchoFormat}


def test_register_plugin_makes_an_uninstalled_plugin_loadable_by_name() -> None:
    with register_plugin(_EchoPlugin()) as registry:
        found = missive.messages.load("echo")
        builtin = missive.adapters.load("stdin")

    assert isinstance(registry, PluginRegistry)
    assert found is _EchoFormat
    assert builtin is StdinAdapter
    with pytest.raises(LookupError):
        missive.messages.load("echo")


def test_missive_plugins_fixture_is_a_fresh_registry(
    missive_plugins: PluginRegistry,
) -> None:
    missive_plugins.register(_EchoPlugin())

    assert missive.messages.load("echo") is _EchoFormat
    assert missive_plugins.discover is False
    assert "redis" not in missive.adapters.names()
