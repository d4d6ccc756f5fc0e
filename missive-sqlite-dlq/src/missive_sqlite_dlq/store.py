"""The SQLite dead letter queue: a durable mapping of message ids to messages."""

from __future__ import annotations

import datetime
import json
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from missive.messages import Message
from missive.processor import TRACEBACK_LIMIT
from missive_sqlite_dlq import schema
from missive_sqlite_dlq.schema import CannotOpenDLQ, NotADLQ, SQLiteDLQError

M = TypeVar("M", bound=Message)

logger = logging.getLogger(__name__)

#: The ``synchronous`` settings accepted, from the most to the least durable.
SYNCHRONOUS_MODES = ("EXTRA", "FULL", "NORMAL")

_SELECT = f"SELECT {', '.join(schema.COLUMNS)} FROM {schema.TABLE}"

_UPSERT = f"""
INSERT INTO {schema.TABLE} ({", ".join(schema.COLUMNS)})
VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)
ON CONFLICT (message_id) DO UPDATE SET
    format = excluded.format,
    raw_data = excluded.raw_data,
    reason = excluded.reason,
    updated = excluded.updated,
    attempts = attempts + 1,
    error_type = excluded.error_type,
    traceback = excluded.traceback,
    adapter = excluded.adapter,
    delivery_count = excluded.delivery_count,
    transport_id = excluded.transport_id,
    attributes = excluded.attributes
"""


# --- connections across threads and fork ------------------------------------

# SQLite forbids using a connection in a process forked after it was opened.
# Each connection records the fork generation it was opened in; a child sees a
# newer generation and opens its own.  Inherited connections are kept
# referenced in the child and never closed there: closing one could checkpoint
# or remove the WAL that the parent is still using.
_fork_generation = 0
_open_handles: weakref.WeakSet[_Handle] = weakref.WeakSet()
_inherited: list[_Handle] = []


class _Handle:
    """One thread's connection, tagged with the process it belongs to."""

    __slots__ = ("__weakref__", "connection", "generation")

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.generation = _fork_generation


def _before_fork() -> None:
    # Another thread adding a connection meanwhile makes the copy fail; retry.
    for _ in range(10):
        try:
            _inherited.extend(list(_open_handles))
        except RuntimeError:
            continue
        return


def _after_fork_in_parent() -> None:
    _inherited.clear()


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


# --- what is stored ---------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """One stored row: the message's bytes and everything known about its failure.

    Reading a row builds no message and runs no code from the file; call
    :meth:`message` for the message object.
    """

    message_id: bytes
    #: The registered name of the message format (``"json"``, ...).
    format_name: str
    raw_data: bytes
    reason: str
    #: When the message was first dead-lettered (UTC).
    inserted: datetime.datetime
    #: When it was last dead-lettered (UTC); equals ``inserted`` on attempt 1.
    updated: datetime.datetime
    #: How many times it was dead-lettered: 1, plus one per failed replay.
    attempts: int
    error_type: str | None
    traceback: str | None
    adapter: str | None
    delivery_count: int | None
    transport_id: str | None
    #: The message's JSON-serialisable attributes.
    attributes: dict[str, Any]

    def message(self) -> Message:
        """Rebuild the message through its registered format.

        :raises PluginNotFound: no installed plugin provides the format.
        """
        from missive import messages

        return messages.load(self.format_name).rebuild(
            self.raw_data, self.message_id, attributes=dict(self.attributes)
        )


def _dead_letter(row: tuple[Any, ...]) -> DeadLetter:
    (
        message_id,
        format_name,
        raw_data,
        reason,
        inserted,
        updated,
        attempts,
        error_type,
        traceback,
        adapter,
        delivery_count,
        transport_id,
        attributes,
    ) = row
    return DeadLetter(
        message_id=bytes(message_id),
        format_name=format_name,
        raw_data=bytes(raw_data),
        reason=reason,
        inserted=schema.parse_time(inserted),
        updated=schema.parse_time(updated),
        attempts=attempts,
        error_type=error_type,
        traceback=traceback,
        adapter=adapter,
        delivery_count=delivery_count,
        transport_id=transport_id,
        attributes=_load_attributes(attributes),
    )


def _load_attributes(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _dump_attributes(attributes: Mapping[str, Any]) -> str | None:
    """Return the attributes as a JSON object, leaving out what JSON cannot hold."""
    if not attributes:
        return None
    try:
        return json.dumps(dict(attributes), allow_nan=False)
    except (TypeError, ValueError):
        pass
    kept: dict[str, Any] = {}
    for key, value in attributes.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            logger.debug("not storing attribute %r: not JSON-serialisable", key)
            continue
        kept[str(key)] = value
    return json.dumps(kept) if kept else None


def _now() -> str:
    # The stored form of schema.format_time, without its conversion to UTC.
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


# --- the store --------------------------------------------------------------


class SQLiteDLQ(MutableMapping[bytes, tuple[M, str]], Generic[M]):
    """A dead letter queue in a SQLite file, shared by threads and processes.

    Keys are message ids, values ``(message, reason)``.  Messages are stored as
    their bytes, their id and the registered name of their format, and read
    back through :func:`missive.messages.load`: nothing is pickled, and reading
    a row never runs code.  Writing an id that is already stored replaces its
    reason and details and adds one to its attempt count, which is how
    ``missive dlq replay`` records a message that failed again.

    Every write is its own ``BEGIN IMMEDIATE`` transaction and returns only
    after the commit, so a processor may ack the message as soon as the write
    returns.  The file is in WAL mode; each thread uses its own connection,
    and a forked child opens new ones, so any number of threads and processes
    may write one file.  Writers wait up to ``busy_timeout`` for each other.

    :param connection_str: the path of the file, created if missing (unless
        ``create`` is false), or a ``file:`` URI.
    :param synchronous: ``"FULL"`` (default) syncs the WAL at every commit, so
        a committed dead letter survives a power loss or an OS crash.
        ``"NORMAL"`` syncs only at checkpoints: several times faster on slow
        disks and still safe if the process crashes, but the last dead letters
        committed before a power loss may be lost although their messages were
        acked.  ``"EXTRA"`` also syncs the directory.
    :param busy_timeout: seconds a write waits for another writer's lock
        before failing with ``sqlite3.OperationalError``.
    :param create: create the file and its tables when they are missing.
    :raises CannotOpenDLQ: the path cannot be opened as a SQLite database.
    :raises NotADLQ: the file is not a Missive DLQ, or has a newer schema.
    """

    def __init__(
        self,
        connection_str: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 10.0,
        create: bool = True,
    ) -> None:
        self.location = os.fspath(connection_str)
        if self.location == ":memory:" or "mode=memory" in self.location:
            raise ValueError(
                "an in-memory SQLite database is private to one connection; use "
                "missive.dlq.memory.MemoryDLQ for a DLQ in memory"
            )
        self.synchronous = synchronous.upper()
        if self.synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, "
                f"not {synchronous!r}"
            )
        self.busy_timeout = busy_timeout
        self._uri = self.location.startswith("file:")
        # Threads opening their connection later must not depend on the cwd.
        self._path = self.location if self._uri else os.path.abspath(self.location)
        self._local = threading.local()
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()
        self._checked_classes: set[type[Message]] = set()
        self._checked_lock = threading.Lock()

        connection = self._open(create=create)
        try:
            self._prepare(connection, create=create)
        except BaseException:
            connection.close()
            raise
        self._adopt(connection)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location!r}>"

    # --- the mapping --------------------------------------------------------

    def __getitem__(self, message_id: bytes) -> tuple[M, str]:
        dead_letter = self.dead_letter(message_id)
        return cast("M", dead_letter.message()), dead_letter.reason

    def __setitem__(self, message_id: bytes, value: tuple[M, str]) -> None:
        message, reason = value
        if message_id != message.message_id:
            raise ValueError(
                f"a DLQ is keyed by message id: key {message_id!r} is not the id "
                f"of {message!r}"
            )
        self._write(message, reason, None)

    def __delitem__(self, message_id: bytes) -> None:
        connection = self._connection()
        with _Immediate(connection):
            deleted = connection.execute(
                f"DELETE FROM {schema.TABLE} WHERE message_id = ?", (message_id,)
            ).rowcount
        if not deleted:
            raise KeyError(message_id)

    def __contains__(self, message_id: object) -> bool:
        if not isinstance(message_id, bytes):
            return False
        row = (
            self._connection()
            .execute(
                f"SELECT 1 FROM {schema.TABLE} WHERE message_id = ?", (message_id,)
            )
            .fetchone()
        )
        return row is not None

    def __iter__(self) -> Iterator[bytes]:
        rows = (
            self._connection()
            .execute(f"SELECT message_id FROM {schema.TABLE} ORDER BY inserted, rowid")
            .fetchall()
        )
        return iter([bytes(message_id) for (message_id,) in rows])

    def __len__(self) -> int:
        (count,) = (
            self._connection()
            .execute(f"SELECT count(*) FROM {schema.TABLE}")
            .fetchone()
        )
        return int(count)

    def clear(self) -> None:
        """Remove every dead letter, in one transaction."""
        connection = self._connection()
        with _Immediate(connection):
            connection.execute(f"DELETE FROM {schema.TABLE}")

    # --- beyond the mapping -------------------------------------------------

    def add_dead_letter(
        self, message: M, reason: str, details: Mapping[str, Any]
    ) -> None:
        """Store ``message`` with the details of its failure; return after commit.

        Called by the processor instead of ``dlq[id] = (message, reason)``.

        :param details: ``error_type``, ``traceback`` and ``adapter``, each
            optional; other keys are ignored.  The traceback is cut to its last
            :data:`missive.processor.TRACEBACK_LIMIT` characters.
        """
        self._write(message, reason, details)

    def oldest(self) -> tuple[M, str, datetime.datetime]:
        """Return ``(message, reason, inserted)`` of the longest-stored entry.

        ``inserted`` is the timezone-aware UTC time the message was first
        dead-lettered; failing again in a replay does not make it newer.

        :raises LookupError: the DLQ is empty.
        """
        row = (
            self._connection()
            .execute(f"{_SELECT} ORDER BY inserted, rowid LIMIT 1")
            .fetchone()
        )
        if row is None:
            raise LookupError("the DLQ is empty")
        dead_letter = _dead_letter(row)
        return (
            cast("M", dead_letter.message()),
            dead_letter.reason,
            dead_letter.inserted,
        )

    def dead_letter(self, message_id: bytes) -> DeadLetter:
        """Return everything stored about ``message_id``.

        :raises KeyError: no dead letter has that id.
        """
        row = (
            self._connection()
            .execute(f"{_SELECT} WHERE message_id = ?", (message_id,))
            .fetchone()
        )
        if row is None:
            raise KeyError(message_id)
        return _dead_letter(row)

    def dead_letters(
        self,
        *,
        reason: str | None = None,
        inserted_before: datetime.datetime | None = None,
        inserted_after: datetime.datetime | None = None,
    ) -> Iterator[DeadLetter]:
        """Yield the stored rows, oldest first, optionally filtered.

        :param reason: keep rows whose reason contains this text.
        :param inserted_before: keep rows first stored before this time.
        :param inserted_after: keep rows first stored after this time.
        """
        where, parameters = _filters(reason, inserted_before, inserted_after)
        cursor = self._connection().execute(
            f"{_SELECT}{where} ORDER BY inserted, rowid", parameters
        )
        for row in cursor:
            yield _dead_letter(row)

    def remove(self, entries: list[tuple[bytes, datetime.datetime]]) -> int:
        """Delete the given ``(message_id, updated)`` rows in one transaction.

        A row written again since ``updated`` is kept: it holds a newer
        failure than the one the caller saw.

        :returns: how many rows were deleted.
        """
        connection = self._connection()
        deleted = 0
        with _Immediate(connection):
            for message_id, updated in entries:
                deleted += connection.execute(
                    f"DELETE FROM {schema.TABLE} WHERE message_id = ? AND updated = ?",
                    (message_id, schema.format_time(updated)),
                ).rowcount
        return deleted

    def integrity_check(self) -> list[str]:
        """Run SQLite's ``PRAGMA integrity_check``; ``["ok"]`` when sound."""
        rows = self._connection().execute("PRAGMA integrity_check").fetchall()
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        """Close the connections this process opened.

        Call it once no thread uses the DLQ any more; a later use opens a
        new connection.
        """
        for handle in list(self._handles):
            if handle.generation == _fork_generation:
                handle.connection.close()
                self._handles.discard(handle)
        self._local.__dict__.pop("handle", None)

    def __enter__(self) -> SQLiteDLQ[M]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals ----------------------------------------------------------

    def _write(
        self, message: M, reason: str, details: Mapping[str, Any] | None
    ) -> None:
        cls = type(message)
        if cls not in self._checked_classes:
            self._check_format(cls)
        attributes = message.attributes
        delivery_count = attributes.get("delivery_count")
        transport_id = attributes.get("transport_id")
        traceback = None
        if details is not None:
            traceback = details.get("traceback")
            if traceback is not None:
                traceback = str(traceback)[-TRACEBACK_LIMIT:]
        now = _now()
        row = (
            message.message_id,
            cls.format_name,
            message.raw_data,
            reason,
            now,
            now,
            None if details is None else details.get("error_type"),
            traceback,
            None if details is None else details.get("adapter"),
            delivery_count
            if isinstance(delivery_count, int) and not isinstance(delivery_count, bool)
            else None,
            None if transport_id is None else str(transport_id),
            _dump_attributes(attributes),
        )

        connection = self._connection()
        with _Immediate(connection):
            connection.execute(_UPSERT, row)

    def _check_format(self, cls: type[Message]) -> None:
        """Warn, once per class, when a class will not be read back as itself.

        The message is stored either way: refusing it would leave it unacked.
        """
        from missive import messages

        try:
            registered: type[Message] | None = messages.load(cls.format_name)
        except Exception:
            registered = None
        if registered is not cls:
            logger.warning(
                "%s.%s has format name %r, under which %s is registered: its "
                "dead letters are stored but read back %s",
                cls.__module__,
                cls.__qualname__,
                cls.format_name,
                "nothing" if registered is None else registered.__qualname__,
                "only once a plugin provides that format"
                if registered is None
                else f"as {registered.__qualname__}",
            )
        with self._checked_lock:
            self._checked_classes.add(cls)

    def _connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening one on first use."""
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None or handle.generation != _fork_generation:
            handle = self._adopt(self._open(create=False))
        return handle.connection

    def _adopt(self, connection: sqlite3.Connection) -> _Handle:
        handle = _Handle(connection)
        self._local.handle = handle
        self._handles.add(handle)
        _open_handles.add(handle)
        return handle

    def _open(self, *, create: bool) -> sqlite3.Connection:
        """Open and configure one connection."""
        target = self._path
        uri = self._uri
        if not create and not uri:
            if not Path(target).is_file():
                raise CannotOpenDLQ(f"{self.location}: no such DLQ file")
            target = Path(target).as_uri() + "?mode=rw"
            uri = True
        try:
            connection = sqlite3.connect(
                target,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
        except sqlite3.Error as exc:
            raise CannotOpenDLQ(
                f"cannot open {self.location} as a SQLite DLQ: {exc} (does its "
                "directory exist, and may this user write there?)"
            ) from exc

        try:
            # A crafted file's triggers and views may not call functions.
            connection.execute("PRAGMA trusted_schema = OFF")
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            connection.execute(f"PRAGMA synchronous = {self.synchronous}")
        except sqlite3.Error as exc:
            connection.close()
            raise _opening_error(self.location, exc) from exc
        if str(mode).lower() != "wal":
            logger.warning(
                "%s stays in %s journal mode, not WAL: concurrent writers wait "
                "for each other longer",
                self.location,
                mode,
            )
        return connection

    def _prepare(self, connection: sqlite3.Connection, *, create: bool) -> None:
        """Check the file's schema, creating or migrating it as needed."""
        try:
            with _Immediate(connection):
                schema.prepare(connection, self.location, create=create)
        except sqlite3.Error as exc:
            raise _opening_error(self.location, exc) from exc


class _Immediate:
    """``with _Immediate(connection):`` runs the block in a write transaction.

    The lock is taken at ``BEGIN``, so a busy database makes the write wait
    (up to the busy timeout) before doing anything; it commits on success and
    rolls back on any exception.
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            try:
                self._connection.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise
            return
        self._roll_back()

    def _roll_back(self) -> None:
        if self._connection.in_transaction:
            try:
                self._connection.execute("ROLLBACK")
            except sqlite3.Error:
                logger.exception("rolling back a failed DLQ write failed")


def _opening_error(location: str, error: sqlite3.Error) -> SQLiteDLQError:
    """Say whether the file is not a DLQ or could not be used just now."""
    if isinstance(error, sqlite3.OperationalError):
        return CannotOpenDLQ(f"cannot open {location} as a SQLite DLQ: {error}")
    return NotADLQ(f"{location} is not a Missive DLQ: {error}")


def _filters(
    reason: str | None,
    inserted_before: datetime.datetime | None,
    inserted_after: datetime.datetime | None,
) -> tuple[str, tuple[Any, ...]]:
    """Return a WHERE clause and its parameters for :meth:`dead_letters`."""
    clauses: list[str] = []
    parameters: list[Any] = []
    if reason is not None:
        clauses.append("instr(reason, ?) > 0")
        parameters.append(reason)
    if inserted_before is not None:
        clauses.append("inserted < ?")
        parameters.append(schema.format_time(inserted_before))
    if inserted_after is not None:
        clauses.append("inserted > ?")
        parameters.append(schema.format_time(inserted_after))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return where, tuple(parameters)
