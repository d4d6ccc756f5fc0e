"""A process writing dead letters, for the multi-process and crash tests.

    python _writer.py DB PREFIX COUNT [GO_FILE]

Writes COUNT raw messages with ids ``PREFIX-<n>`` and payload ``payload
PREFIX-<n>``.  With GO_FILE, waits (at most 30 s) for that file to exist first,
so that several writers start together.  After each write returns, which is
after its commit, prints the id on stdout and flushes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from missive.messages import RawMessage
from missive_sqlite_dlq import SQLiteDLQ


def main(argv: list[str]) -> int:
    database, prefix, count = argv[0], argv[1], int(argv[2])
    dlq: SQLiteDLQ[RawMessage] = SQLiteDLQ(database, busy_timeout=30)

    if len(argv) > 3:
        go = Path(argv[3])
        deadline = time.monotonic() + 30
        while not go.exists():
            if time.monotonic() > deadline:
                print("gave up waiting for the go file", file=sys.stderr)
                return 2
            time.sleep(0.01)

    for number in range(count):
        message_id = f"{prefix}-{number}".encode()
        message = RawMessage(b"payload " + message_id, message_id)
        dlq[message_id] = (message, f"reason {number}")
        sys.stdout.write(message_id.decode() + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
