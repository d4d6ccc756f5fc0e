"""The SQLite DLQ passes the conformance kit, and so do the built-in formats
when their messages round-trip through it (bytes in a file, not objects)."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

import pytest

from missive.messages import DictMessage, JSONMessage, Message, RawMessage
from missive.testing import DLQContract, MessageFormatContract
from missive_sqlite_dlq import SQLiteDLQ

pytest_plugins = ["missive.testing"]

DLQ = MutableMapping[bytes, tuple[Message, str]]


class TestSQLiteDLQ(DLQContract):
    # Several threads, each with its own connection, on one WAL file.
    writer_threads = 8

    @pytest.fixture
    def dlq_under_test(self, dlq: SQLiteDLQ[Message]) -> SQLiteDLQ[Message]:
        """This folder's ``dlq`` fixture: a new file, closed afterwards."""
        return dlq


class _ThroughSQLite(MessageFormatContract):
    def make_dlq(self, tmp_path: Path) -> DLQ:
        return SQLiteDLQ(tmp_path / "formats.db")

    def close_dlq(self, dlq: DLQ) -> None:
        assert isinstance(dlq, SQLiteDLQ)
        dlq.close()


class TestRawThroughSQLite(_ThroughSQLite):
    message_cls = RawMessage
    valid_payloads = (b"", bytes(range(256)))


class TestJSONThroughSQLite(_ThroughSQLite):
    message_cls = JSONMessage
    valid_payloads = (b'{"order": 7, "items": ["\\u00e9", 2.5]}', b"null")
    invalid_payloads = (b"{not json", b"\xff")

    def decode(self, message: Message) -> object:
        assert isinstance(message, JSONMessage)
        return message.get_json()


class TestDictThroughSQLite(_ThroughSQLite):
    message_cls = DictMessage
    valid_payloads = (b'{"order": 7}',)
    invalid_payloads = (b"[7]",)

    def decode(self, message: Message) -> object:
        assert isinstance(message, DictMessage)
        return message.contents()
