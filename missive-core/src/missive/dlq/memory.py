"""A dead letter queue kept in memory, for tests and short-lived tools."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator, MutableMapping

from missive._typing import Generic, TypeVar
from missive.messages import Message

M = TypeVar("M", bound=Message)


class MemoryDLQ(MutableMapping[bytes, tuple[M, str]], Generic[M]):
    """A thread-safe in-memory DLQ that remembers when each entry arrived.

    Everything is lost when the process exits: use a durable backend in
    production.
    """

    def __init__(self) -> None:
        self._entries: dict[bytes, tuple[M, str, datetime.datetime]] = {}
        self._lock = threading.Lock()

    def __getitem__(self, message_id: bytes) -> tuple[M, str]:
        message, reason, _ = self._entries[message_id]
        return message, reason

    def __setitem__(self, message_id: bytes, value: tuple[M, str]) -> None:
        message, reason = value
        with self._lock:
            # Re-inserting moves the entry to the end, as a new arrival.
            self._entries.pop(message_id, None)
            self._entries[message_id] = (message, reason, _now())

    def __delitem__(self, message_id: bytes) -> None:
        with self._lock:
            del self._entries[message_id]

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def oldest(self) -> tuple[M, str, datetime.datetime]:
        """Return ``(message, reason, inserted)`` of the oldest entry.

        :raises LookupError: the DLQ is empty.
        """
        with self._lock:
            for entry in self._entries.values():
                return entry
        raise LookupError("the DLQ is empty")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
