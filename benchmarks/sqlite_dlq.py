"""The SQLite DLQ: dead-letter writes against raw sqlite3 inserts.

Both sides write the same rows into files with the same schema and the same
settings (WAL, ``synchronous=FULL``, the same busy timeout), one
``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction per row, on the same disk.
The baseline executes a prepared INSERT with ready-made parameters; the
candidate is ``dlq[message_id] = (message, reason)`` with ready-made messages,
so the ratio is what the DLQ adds per write: the per-thread connection lookup,
building the row (timestamps, format name, attributes) and the upsert.
"""

from __future__ import annotations

import datetime
import itertools
import sqlite3
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Comparison, compare, rate
from missive.messages import RawMessage
from missive_sqlite_dlq import SQLiteDLQ
from missive_sqlite_dlq.schema import COLUMNS, TABLE, format_time

PAYLOAD = b'{"order": 1234, "lines": [{"sku": "A-1", "qty": 2}], "total": 19.5}'
REASON = "KeyError: 'customer'"


def run(quick: bool) -> list[Comparison]:
    count = 200 if quick else 2000
    rounds = 3 if quick else 9
    with tempfile.TemporaryDirectory(prefix="missive-bench-dlq-") as folder:
        return [
            _inserts(Path(folder), "FULL", count, rounds, target=0.8),
            # Without an fsync per commit, what remains is the cost in Python.
            _inserts(Path(folder), "NORMAL", count * 2, rounds, target=None),
        ]


def _inserts(
    folder: Path, synchronous: str, count: int, rounds: int, target: float | None
) -> Comparison:
    ids = itertools.count()

    dlq: SQLiteDLQ[RawMessage] = SQLiteDLQ(
        folder / f"dlq-{synchronous}.db", synchronous=synchronous
    )

    def through_dlq(n: int) -> float:
        batch = [RawMessage(PAYLOAD, b"dlq-%d" % next(ids)) for _ in range(n)]
        started = time.perf_counter()
        for message in batch:
            dlq[message.message_id] = (message, REASON)
        return rate(n, started)

    # The baseline's file gets its schema from the DLQ, then plain sqlite3.
    raw_path = folder / f"raw-{synchronous}.db"
    SQLiteDLQ(raw_path).close()
    raw = sqlite3.connect(raw_path, timeout=10.0, isolation_level=None)
    raw.execute("PRAGMA trusted_schema = OFF")
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute(f"PRAGMA synchronous = {synchronous}")
    insert = (
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(COLUMNS))})"
    )

    def raw_sqlite3(n: int) -> float:
        now = format_time(datetime.datetime.now(datetime.UTC))
        rows = [
            (b"raw-%d" % next(ids), "raw", PAYLOAD, REASON, now, now, 1)
            + (None,) * (len(COLUMNS) - 7)
            for _ in range(n)
        ]
        started = time.perf_counter()
        for row in rows:
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(insert, row)
            raw.execute("COMMIT")
        return rate(n, started)

    try:
        result = compare(
            f"dlq[id] = (message, reason), synchronous={synchronous}",
            baseline_name="raw sqlite3 INSERT, same pragmas and transactions",
            candidate=through_dlq,
            baseline=raw_sqlite3,
            count=count,
            rounds=rounds,
            target=target,
            unit="writes/s",
            note=f"{count} writes per round, one committed transaction each, "
            f"WAL and synchronous={synchronous}, files in the machine's temporary "
            "directory",
        )
    finally:
        dlq.close()
        raw.close()
    return result
