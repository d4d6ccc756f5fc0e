"""The installed plugin: found by name, importable by its 0.8.1 path, and
used by a processor through the documented failure cases."""

from __future__ import annotations

import importlib.metadata
import sqlite3
from pathlib import Path

import pytest

import missive.dlq
from missive import DeadLetterError, JSONMessage, Outcome, Processor
from missive.contexts import HandlingContext
from missive.messages import Message
from missive_sqlite_dlq import SQLiteDLQ


def test_load_sqlite_returns_the_installed_class() -> None:
    assert missive.dlq.load("sqlite") is SQLiteDLQ
    assert "sqlite" in missive.dlq.names()


def test_entry_points_are_published_by_the_distribution() -> None:
    distribution = importlib.metadata.distribution("missive-sqlite-dlq")
    points = {
        (point.group, point.name): point.value for point in distribution.entry_points
    }

    assert points[("missive.dlq", "sqlite")] == "missive_sqlite_dlq.plugin"
    assert points[("missive.commands", "dlq")] == "missive_sqlite_dlq.commands"


def test_the_0_8_1_import_path_still_works() -> None:
    # Resolved at run time from the entry point, so mypy cannot see it.
    from missive.dlq.sqlite import SQLiteDLQ as Imported  # type: ignore[import-not-found]

    assert Imported is SQLiteDLQ


def _processor(dlq: SQLiteDLQ[JSONMessage]) -> Processor[JSONMessage]:
    processor: Processor[JSONMessage] = Processor()
    processor.set_dlq(dlq)

    @processor.handle_for(lambda message: message.get_json()["kind"] == "explodes")
    def explodes(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
        raise ValueError("cannot handle this order")

    @processor.handle_for(lambda message: message.get_json()["kind"] == "fine")
    def fine(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
        ctx.ack()

    return processor


def test_handler_exception_sends_message_to_dlq_with_details_and_acks(
    db_path: Path,
) -> None:
    dlq: SQLiteDLQ[JSONMessage] = SQLiteDLQ(db_path)
    processor = _processor(dlq)
    message = JSONMessage(
        b'{"kind": "explodes"}',
        b"1-0",
        attributes={"transport_id": "1-0", "delivery_count": 2},
    )

    with processor.test_client() as client:
        outcome = client.send(message)

    assert outcome is Outcome.DEAD_LETTERED
    assert client.acked == [message]
    entry = dlq.dead_letter(b"1-0")
    assert entry.reason == "cannot handle this order"
    assert entry.error_type == "builtins.ValueError"
    assert entry.adapter == "TestAdapter"
    assert entry.traceback is not None
    assert "cannot handle this order" in entry.traceback
    assert entry.delivery_count == 2
    assert entry.transport_id == "1-0"


def test_undecodable_and_unroutable_messages_are_dead_lettered(
    db_path: Path,
) -> None:
    dlq: SQLiteDLQ[JSONMessage] = SQLiteDLQ(db_path)
    processor = _processor(dlq)

    with processor.test_client() as client:
        outcomes = [
            client.send(JSONMessage(b"{not json", b"bad-json")),
            client.send(JSONMessage(b'{"kind": "unknown"}', b"no-route")),
            client.send(JSONMessage(b'{"kind": "fine"}', b"fine")),
        ]

    assert outcomes == [Outcome.DEAD_LETTERED, Outcome.DEAD_LETTERED, Outcome.ACKED]
    assert dlq[b"bad-json"][1].startswith("could not decode message")
    assert dlq[b"no-route"][1] == "no matching handlers"
    assert b"fine" not in dlq


def test_a_dlq_write_that_cannot_commit_is_not_acked(db_path: Path) -> None:
    dlq: SQLiteDLQ[JSONMessage] = SQLiteDLQ(db_path, busy_timeout=0.2)
    processor = _processor(dlq)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    message = JSONMessage(b'{"kind": "explodes"}', b"blocked")

    try:
        with processor.test_client() as client, pytest.raises(DeadLetterError):
            client.send(message)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert client.acked == []
    assert b"blocked" not in dlq
    with processor.test_client() as client:
        assert client.send(message) is Outcome.DEAD_LETTERED
    assert b"blocked" in dlq


def test_a_class_without_a_registered_format_is_still_stored(
    dlq: SQLiteDLQ[Message], caplog: pytest.LogCaptureFixture
) -> None:
    class Unregistered(Message):
        format_name = "not-installed"

    dlq[b"u"] = (Unregistered(b"data", b"u"), "kept anyway")

    assert dlq.dead_letter(b"u").raw_data == b"data"
    assert "not-installed" in caplog.text
    with pytest.raises(LookupError, match="not-installed"):
        dlq[b"u"]
