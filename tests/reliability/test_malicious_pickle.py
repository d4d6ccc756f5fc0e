"""Issue 7, test 11: DLQ rows crafted as malicious pickles stay inert.

Rows are written straight into a DLQ file with a pickle, of every protocol,
that creates a file when unpickled, in each column a crafted file could
carry one: the payload, the message id, the traceback and the attributes.
They then go through ``missive dlq list``, ``show`` (also ``--raw``),
``export`` and ``replay`` (with a processor that acks, so that each message
reaches a handler).  The file the pickles would create must never appear.
"""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

from reliability_testing import Figures

from missive_sqlite_dlq import SQLiteDLQ

ACKING_PROCESSOR = """
from missive import Processor

processor = Processor()


@processor.handle_for(lambda message: True)
def accept(message, ctx):
    message.raw_data.decode("latin-1")
    ctx.ack()
"""


class _CreatesFile:
    """Unpickling this calls ``open(path, "w")``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def _missive(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    script = Path(sys.executable).parent / "missive"
    return subprocess.run(
        [str(script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_crafted_pickle_rows_never_run_through_list_show_export_and_replay(
    tmp_path: Path, figures: Figures
) -> None:
    marker = tmp_path / "pwned"
    # The payload really would create the file if anything unpickled it.
    pickle.loads(pickle.dumps(_CreatesFile(tmp_path / "proof"))).close()
    assert (tmp_path / "proof").exists()
    db_path = tmp_path / "dlq.db"
    SQLiteDLQ(db_path).close()
    connection = sqlite3.connect(db_path)
    ids = []
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        payload = pickle.dumps(_CreatesFile(marker), protocol=protocol)
        for column in ("raw_data", "message_id", "traceback", "attributes"):
            message_id = b"p%d-%s" % (protocol, column.encode())
            if column == "message_id":
                message_id = payload
            ids.append(message_id)
            connection.execute(
                "INSERT INTO dead_letters (message_id, format, raw_data, reason, "
                "inserted, updated, attempts, traceback, attributes) VALUES "
                "(?, 'raw', ?, 'crafted', '2024-01-01T00:00:00.000000+00:00', "
                "'2024-01-01T00:00:00.000000+00:00', 1, ?, ?)",
                (
                    message_id,
                    payload if column in ("raw_data", "message_id") else b"{}",
                    payload.decode("latin-1") if column == "traceback" else None,
                    payload if column == "attributes" else None,
                ),
            )
    connection.commit()
    connection.close()
    (tmp_path / "replay_target.py").write_text(ACKING_PROCESSOR)

    listed = _missive("dlq", "list", db_path, cwd=tmp_path)
    shown_ids = [line.split()[0].decode() for line in listed.stdout.splitlines()[1:]]
    results = [listed, _missive("dlq", "export", db_path, cwd=tmp_path)]
    for shown in shown_ids:
        results.append(_missive("dlq", "show", db_path, shown, cwd=tmp_path))
        results.append(_missive("dlq", "show", db_path, shown, "--raw", cwd=tmp_path))
    replayed = _missive(
        "dlq",
        "replay",
        db_path,
        "--processor",
        "replay_target:processor",
        "--all",
        cwd=tmp_path,
    )
    remaining = len(SQLiteDLQ(db_path, create=False))
    figures["crafted_rows"] = len(ids)
    figures["commands_run"] = len(results) + 1
    figures["marker_created"] = marker.exists()

    assert not marker.exists()
    assert len(shown_ids) == len(ids)
    assert [r.returncode for r in results] == [0] * len(results), [
        r.stderr for r in results if r.returncode
    ]
    assert replayed.returncode == 0, replayed.stderr
    assert remaining == 0
