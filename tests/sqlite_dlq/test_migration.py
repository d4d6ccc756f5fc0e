"""Opening a file written by Missive 0.8.1 (schema 1) migrates it."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

import pytest

from missive.messages import DictMessage, JSONMessage, Message, RawMessage
from missive_sqlite_dlq import SQLiteDLQ

from .conftest import run_missive

# The 0.8.1 layout, written out here rather than imported, so that the test
# keeps describing the old files even if the code's copy changes.
VERSION_1 = """
CREATE TABLE messages (
    message_id BLOB PRIMARY KEY,
    message_class TEXT NOT NULL,
    raw_data BLOB NOT NULL,
    reason TEXT NOT NULL,
    inserted TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""

ROWS = [
    (
        b"old-json",
        "missive.missive.JSONMessage",
        b'{"a": 1}',
        "bad json",
        "2020-05-01 10:00:00",
    ),
    (
        b"old-raw",
        "missive.missive.RawMessage",
        b"\x00\x01",
        "no handler",
        "2020-05-01 09:00:00",
    ),
    (
        b"old-dict",
        "missive.missive.DictMessage",
        b'{"b": 2}',
        "boom",
        "2020-05-02 08:30:15",
    ),
    (b"old-odd", "someapp.messages.AvroMessage", b"avro", "odd", "2020-05-03 00:00:00"),
]


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    connection.execute(VERSION_1)
    connection.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?)", ROWS)
    connection.execute(
        "INSERT INTO messages (message_id, message_class, raw_data, reason) "
        "VALUES (?, ?, ?, ?)",
        (b"old-default-time", "missive.missive.RawMessage", b"x", "recent"),
    )
    connection.commit()
    connection.close()
    return path


def _user_version(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])
    finally:
        connection.close()


def test_opening_a_version_1_file_migrates_every_row(old_file: Path) -> None:
    assert _user_version(old_file) == 0

    dlq: SQLiteDLQ[Message] = SQLiteDLQ(old_file)

    assert _user_version(old_file) == 2
    assert len(dlq) == 5
    assert dlq[b"old-json"] == (JSONMessage(b'{"a": 1}', b"old-json"), "bad json")
    assert type(dlq[b"old-json"][0]) is JSONMessage
    assert type(dlq[b"old-raw"][0]) is RawMessage
    assert dlq[b"old-raw"][0].raw_data == b"\x00\x01"
    assert type(dlq[b"old-dict"][0]) is DictMessage
    # A class no installed format provides is read back as raw bytes.
    assert type(dlq[b"old-odd"][0]) is RawMessage
    assert dlq[b"old-odd"][0].raw_data == b"avro"

    entry = dlq.dead_letter(b"old-dict")
    assert entry.inserted == datetime.datetime(
        2020, 5, 2, 8, 30, 15, tzinfo=datetime.UTC
    )
    assert entry.attempts == 1
    assert dlq.oldest() == (
        RawMessage(b"\x00\x01", b"old-raw"),
        "no handler",
        datetime.datetime(2020, 5, 1, 9, 0, tzinfo=datetime.UTC),
    )
    recent = dlq.dead_letter(b"old-default-time").inserted
    assert abs(datetime.datetime.now(datetime.UTC) - recent) < datetime.timedelta(
        minutes=5
    )


def test_migrated_file_drops_the_old_table_and_accepts_new_writes(
    old_file: Path,
) -> None:
    dlq: SQLiteDLQ[Message] = SQLiteDLQ(old_file)
    dlq[b"old-raw"] = (RawMessage(b"\x00\x01", b"old-raw"), "failed again")
    dlq.close()

    connection = sqlite3.connect(old_file)
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_schema")}
    connection.close()
    assert "messages" not in tables
    assert "dead_letters" in tables
    reopened: SQLiteDLQ[Message] = SQLiteDLQ(old_file)
    assert reopened.dead_letter(b"old-raw").attempts == 2
    assert reopened.integrity_check() == ["ok"]


def test_the_cli_reads_a_version_1_file(old_file: Path) -> None:
    result = run_missive("dlq", "list", old_file)

    assert result.returncode == 0, result.stderr
    assert "old-json" in result.stdout
    assert "bad json" in result.stdout
    assert _user_version(old_file) == 2
