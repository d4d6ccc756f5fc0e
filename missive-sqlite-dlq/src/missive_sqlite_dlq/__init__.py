"""A durable SQLite dead letter queue for Missive.

:class:`SQLiteDLQ` keeps the messages a processor could not handle in a SQLite
file, safely shared by threads and processes::

    from missive.dlq.sqlite import SQLiteDLQ

    processor.set_dlq(SQLiteDLQ("/var/dlq.db"))

The ``missive dlq`` command lists, shows, exports, replays and purges them.
"""

from __future__ import annotations

from missive_sqlite_dlq.schema import CannotOpenDLQ, NotADLQ, SQLiteDLQError
from missive_sqlite_dlq.store import DeadLetter, SQLiteDLQ

__all__ = ["CannotOpenDLQ", "DeadLetter", "NotADLQ", "SQLiteDLQ", "SQLiteDLQError"]
