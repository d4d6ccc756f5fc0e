"""The ``sqlite`` DLQ backend, registered in the ``missive.dlq`` group.

This is the module that ``missive.dlq.sqlite`` resolves to, so the 0.8.1
import keeps working::

    from missive.dlq.sqlite import SQLiteDLQ
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from missive.plugins import hookimpl
from missive_sqlite_dlq.schema import CannotOpenDLQ, NotADLQ, SQLiteDLQError
from missive_sqlite_dlq.store import DeadLetter, SQLiteDLQ

__all__ = ["CannotOpenDLQ", "DeadLetter", "NotADLQ", "SQLiteDLQ", "SQLiteDLQError"]


@hookimpl
def missive_dlq_backends() -> Mapping[str, type[Any]]:
    return {"sqlite": SQLiteDLQ}
