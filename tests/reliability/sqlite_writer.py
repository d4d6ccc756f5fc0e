"""A process writing dead letters and timing each write, for test 7.

    python sqlite_writer.py DB PREFIX COUNT GO_FILE LATENCIES_FILE

Waits (at most 30 s) for GO_FILE so that every writer starts together, then
writes COUNT raw messages with ids ``PREFIX-<n>``, each its own committed
transaction, and writes the latency of every write (seconds, one per line)
to LATENCIES_FILE.  Any error ends the process with a traceback on stderr.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from missive.messages import RawMessage
from missive_sqlite_dlq import SQLiteDLQ


def main(argv: list[str]) -> int:
    database, prefix, count, go, latencies_file = argv
    dlq: SQLiteDLQ[RawMessage] = SQLiteDLQ(database)

    deadline = time.monotonic() + 30
    while not Path(go).exists():
        if time.monotonic() > deadline:
            print("gave up waiting for the go file", file=sys.stderr)
            return 2
        time.sleep(0.005)

    latencies = []
    for number in range(int(count)):
        message_id = f"{prefix}-{number}".encode()
        message = RawMessage(b'{"n": %d}' % number, message_id)
        started = time.perf_counter()
        dlq.add_dead_letter(
            message, f"reason {number}", {"error_type": "Poison", "adapter": "test"}
        )
        latencies.append(time.perf_counter() - started)
    dlq.close()
    Path(latencies_file).write_text("".join(f"{s:.6f}\n" for s in latencies))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
