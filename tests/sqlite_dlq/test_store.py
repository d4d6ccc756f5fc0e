"""SQLiteDLQ as a mapping: round trips, oldest(), details, errors at opening."""

from __future__ import annotations

import datetime
import sqlite3
import threading
from pathlib import Path

import pytest

from missive import messages
from missive.messages import JSONMessage, Message, RawMessage
from missive.processor import TRACEBACK_LIMIT
from missive_sqlite_dlq import CannotOpenDLQ, NotADLQ, SQLiteDLQ

JSON_PAYLOAD = b'{"order": 7, "items": ["\\u00e9", 2.5], "note": null}'


def test_every_registered_format_round_trips_with_class_id_and_bytes(
    dlq: SQLiteDLQ[Message],
) -> None:
    names = messages.names()
    assert {"raw", "json", "dict"} <= set(names)
    stored = {}
    for name in names:
        cls = messages.load(name)
        message = cls(JSON_PAYLOAD, f"id-{name}".encode())
        dlq[message.message_id] = (message, f"failed as {name}")
        stored[message.message_id] = message

    for message_id, original in stored.items():
        read, reason = dlq[message_id]
        assert type(read) is type(original)
        assert read.message_id == original.message_id
        assert read.raw_data == original.raw_data
        assert read == original
        assert reason == f"failed as {type(original).format_name}"


def test_binary_payload_round_trips_unchanged(dlq: SQLiteDLQ[Message]) -> None:
    payload = bytes(range(256)) * 3
    message = RawMessage(payload, b"\x00\xffbinary-id")

    dlq[message.message_id] = (message, "not text")

    read, _ = dlq[b"\x00\xffbinary-id"]
    assert read.raw_data == payload
    assert read.message_id == b"\x00\xffbinary-id"


def test_reading_back_from_a_new_instance_sees_committed_writes(
    db_path: Path,
) -> None:
    writer: SQLiteDLQ[Message] = SQLiteDLQ(db_path)
    message = JSONMessage(b"[1]", b"persisted")
    writer[b"persisted"] = (message, "kept")
    writer.close()

    reader: SQLiteDLQ[Message] = SQLiteDLQ(db_path)

    assert reader[b"persisted"] == (message, "kept")
    reader.close()


def test_full_mapping_protocol(dlq: SQLiteDLQ[Message]) -> None:
    first = RawMessage(b"one", b"a")
    second = RawMessage(b"two", b"b")
    third = RawMessage(b"three", b"c")

    assert len(dlq) == 0
    assert list(dlq) == []
    assert b"a" not in dlq
    assert dlq.get(b"a") is None

    dlq[b"a"] = (first, "r1")
    dlq.update({b"b": (second, "r2")})
    assert dlq.setdefault(b"c", (third, "r3")) == (third, "r3")
    assert dlq.setdefault(b"c", (first, "ignored")) == (third, "r3")

    assert len(dlq) == 3
    assert list(dlq) == [b"a", b"b", b"c"]
    assert set(dlq.keys()) == {b"a", b"b", b"c"}
    assert dict(dlq.items()) == {
        b"a": (first, "r1"),
        b"b": (second, "r2"),
        b"c": (third, "r3"),
    }
    assert [reason for _, reason in dlq.values()] == ["r1", "r2", "r3"]
    assert b"b" in dlq
    text_key: object = "b"
    assert text_key not in dlq
    assert dlq == {b"a": (first, "r1"), b"b": (second, "r2"), b"c": (third, "r3")}

    del dlq[b"a"]
    assert b"a" not in dlq
    with pytest.raises(KeyError):
        del dlq[b"a"]
    with pytest.raises(KeyError):
        dlq[b"a"]
    assert dlq.pop(b"b") == (second, "r2")
    assert dlq.pop(b"b", None) is None
    assert dlq.popitem() == (b"c", (third, "r3"))
    assert len(dlq) == 0

    dlq[b"a"] = (first, "r1")
    dlq[b"b"] = (second, "r2")
    dlq.clear()
    assert len(dlq) == 0


def test_key_must_be_the_message_id(dlq: SQLiteDLQ[Message]) -> None:
    message = RawMessage(b"x", b"real-id")

    with pytest.raises(ValueError, match="keyed by message id"):
        dlq[b"other-id"] = (message, "reason")

    assert len(dlq) == 0


def test_writing_an_existing_id_updates_reason_and_counts_attempts(
    dlq: SQLiteDLQ[Message],
) -> None:
    message = RawMessage(b"x", b"again")
    dlq[b"again"] = (message, "first failure")
    first = dlq.dead_letter(b"again")

    dlq[b"again"] = (message, "second failure")
    dlq.add_dead_letter(message, "third failure", {"error_type": "builtins.OSError"})

    entry = dlq.dead_letter(b"again")
    assert len(dlq) == 1
    assert entry.reason == "third failure"
    assert entry.attempts == 3
    assert entry.error_type == "builtins.OSError"
    assert entry.inserted == first.inserted
    assert entry.updated > first.updated
    assert dlq[b"again"][1] == "third failure"


def test_oldest_returns_the_first_stored_with_an_aware_utc_time(
    dlq: SQLiteDLQ[Message],
) -> None:
    before = datetime.datetime.now(datetime.UTC)
    for number in range(5):
        stored = RawMessage(b"m%d" % number, b"id-%d" % number)
        dlq[stored.message_id] = (stored, f"reason {number}")
    after = datetime.datetime.now(datetime.UTC)

    message, reason, inserted = dlq.oldest()

    assert message == RawMessage(b"m0", b"id-0")
    assert reason == "reason 0"
    assert inserted.utcoffset() == datetime.timedelta(0)
    assert before <= inserted <= after

    del dlq[b"id-0"]
    assert dlq.oldest()[0].message_id == b"id-1"
    # A second failure does not make a message newer.
    dlq[b"id-1"] = (RawMessage(b"m1", b"id-1"), "failed again")
    assert dlq.oldest()[:2] == (RawMessage(b"m1", b"id-1"), "failed again")


def test_oldest_of_an_empty_dlq_raises_lookup_error(dlq: SQLiteDLQ[Message]) -> None:
    with pytest.raises(LookupError, match="empty"):
        dlq.oldest()


def test_add_dead_letter_stores_details_and_transport_attributes(
    dlq: SQLiteDLQ[Message],
) -> None:
    message = JSONMessage(
        b"{}",
        b"1700000000000-0",
        attributes={
            "transport_id": "1700000000000-0",
            "delivery_count": 4,
            "stream": "orders",
            "socket": object(),
        },
    )
    traceback = "Traceback (most recent call last):\n" + "x" * (TRACEBACK_LIMIT * 2)

    dlq.add_dead_letter(
        message,
        "boom",
        {
            "error_type": "builtins.ValueError",
            "traceback": traceback,
            "adapter": "RedisStreamsAdapter",
        },
    )

    entry = dlq.dead_letter(b"1700000000000-0")
    assert entry.error_type == "builtins.ValueError"
    assert entry.adapter == "RedisStreamsAdapter"
    assert entry.traceback == traceback[-TRACEBACK_LIMIT:]
    assert entry.delivery_count == 4
    assert entry.transport_id == "1700000000000-0"
    assert entry.attributes == {
        "transport_id": "1700000000000-0",
        "delivery_count": 4,
        "stream": "orders",
    }
    read, _ = dlq[b"1700000000000-0"]
    assert read.attributes["stream"] == "orders"


def test_settings_are_applied_to_every_connection(db_path: Path) -> None:
    dlq: SQLiteDLQ[Message] = SQLiteDLQ(db_path, synchronous="normal")
    seen: list[tuple[str, int]] = []

    def read_settings() -> None:
        connection = dlq._connection()
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        sync = connection.execute("PRAGMA synchronous").fetchone()[0]
        seen.append((mode, sync))

    read_settings()
    thread = threading.Thread(target=read_settings)
    thread.start()
    thread.join(timeout=10)

    # PRAGMA synchronous reads back as a number: 1 is NORMAL, 2 is FULL.
    assert seen == [("wal", 1), ("wal", 1)]
    assert SQLiteDLQ(db_path)._connection().execute(
        "PRAGMA synchronous"
    ).fetchone() == (2,)


def test_unknown_synchronous_mode_is_refused(db_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of"):
        SQLiteDLQ(db_path, synchronous="OFF")


def test_in_memory_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MemoryDLQ"):
        SQLiteDLQ(":memory:")


def test_path_in_missing_directory_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(CannotOpenDLQ, match="cannot open"):
        SQLiteDLQ(tmp_path / "no" / "such" / "dir" / "dlq.db")


def test_directory_path_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(CannotOpenDLQ):
        SQLiteDLQ(tmp_path)


def test_file_that_is_not_a_database_fails_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the pages of a database\n" * 200)

    with pytest.raises(NotADLQ, match="not a Missive DLQ"):
        SQLiteDLQ(path)

    assert path.read_bytes() == b"these are not the pages of a database\n" * 200


def test_other_sqlite_database_fails_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (name TEXT)")
    connection.close()

    with pytest.raises(NotADLQ, match="tables: users"):
        SQLiteDLQ(path)


def test_newer_schema_fails_at_construction(db_path: Path) -> None:
    SQLiteDLQ(db_path).close()
    with sqlite3.connect(db_path) as connection:
        connection.execute("PRAGMA user_version = 99")
    connection.close()

    with pytest.raises(NotADLQ, match="newer than this missive-sqlite-dlq"):
        SQLiteDLQ(db_path)


def test_without_create_a_missing_file_is_an_error_and_not_created(
    db_path: Path,
) -> None:
    with pytest.raises(CannotOpenDLQ, match="no such DLQ file"):
        SQLiteDLQ(db_path, create=False)

    assert not db_path.exists()


def test_threads_write_concurrently_through_one_instance(
    dlq: SQLiteDLQ[Message],
) -> None:
    errors: list[BaseException] = []

    def write(thread_number: int) -> None:
        try:
            for number in range(100):
                message_id = f"t{thread_number}-{number}".encode()
                dlq[message_id] = (RawMessage(message_id, message_id), "threaded")
                assert message_id in dlq
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(dlq) == 800
    assert dlq[b"t7-99"][0].raw_data == b"t7-99"
    assert dlq.integrity_check() == ["ok"]
