"""A row crafted to hold a pickle is read as bytes and never unpickled."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

from missive.messages import Message
from missive_sqlite_dlq import SQLiteDLQ

from .conftest import run_missive

REPLAY_PROCESSOR = """
from missive import Processor

processor = Processor()
"""


class _CreatesFile:
    """Unpickling this calls ``open(path, "w")``: the file shows it happened."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def test_the_crafted_pickle_does_create_its_file_when_unpickled(
    tmp_path: Path,
) -> None:
    # The payload the next tests store would do harm if anything unpickled it.
    witness = tmp_path / "witness"
    pickle.loads(pickle.dumps(_CreatesFile(witness))).close()

    assert witness.exists()


def test_rows_holding_a_pickle_are_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_CreatesFile(marker))
    db_path = tmp_path / "dlq.db"
    SQLiteDLQ(db_path).close()
    connection = sqlite3.connect(db_path)
    connection.execute(
        "INSERT INTO dead_letters (message_id, format, raw_data, reason, inserted, "
        "updated, attempts, traceback, attributes) "
        "VALUES (?, 'raw', ?, ?, '2024-01-01T00:00:00.000000+00:00', "
        "'2024-01-01T00:00:00.000000+00:00', 1, ?, ?)",
        (b"crafted", payload, "pickled", payload.decode("latin-1"), payload),
    )
    connection.commit()
    connection.close()
    (tmp_path / "replay_target.py").write_text(REPLAY_PROCESSOR)

    dlq: SQLiteDLQ[Message] = SQLiteDLQ(db_path)
    message, reason = dlq[b"crafted"]
    items = dict(dlq.items())
    oldest = dlq.oldest()
    entries = list(dlq.dead_letters())
    dlq.close()
    results = [
        run_missive("dlq", "list", db_path),
        run_missive("dlq", "show", db_path, "crafted"),
        run_missive("dlq", "export", db_path),
        run_missive(
            "dlq",
            "replay",
            db_path,
            "--processor",
            "replay_target:processor",
            "--all",
            cwd=tmp_path,
        ),
    ]

    assert not marker.exists()
    assert message.raw_data == payload
    assert reason == "pickled"
    assert items[b"crafted"][0].raw_data == payload
    assert oldest[0].raw_data == payload
    assert entries[0].attributes == {}
    assert [result.returncode for result in results] == [0, 0, 0, 3]
    assert "base64" in results[1].stdout


def test_a_version_1_row_holding_a_pickle_is_migrated_as_bytes(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_CreatesFile(marker))
    db_path = tmp_path / "old.db"
    connection = sqlite3.connect(db_path)
    connection.execute(
        "CREATE TABLE messages (message_id BLOB PRIMARY KEY, message_class TEXT NOT "
        "NULL, raw_data BLOB NOT NULL, reason TEXT NOT NULL, inserted TIMESTAMP NOT "
        "NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    connection.execute(
        "INSERT INTO messages (message_id, message_class, raw_data, reason) "
        "VALUES (?, ?, ?, ?)",
        (b"old", payload.decode("latin-1"), payload, "pickled"),
    )
    connection.commit()
    connection.close()

    dlq: SQLiteDLQ[Message] = SQLiteDLQ(db_path)
    message, _ = dlq[b"old"]

    assert not marker.exists()
    assert message.raw_data == payload
