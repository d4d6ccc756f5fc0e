"""The layout of a DLQ file, its versions, and migration from older ones.

The version lives in ``PRAGMA user_version``.  Version 1 is the layout of
Missive 0.8.1, which left ``user_version`` at 0: one ``messages`` table holding
the payload, the message class's name, the reason and a naive UTC timestamp.
Version 2 adds the message format's registered name, the failure details and
an attempt count, in a ``dead_letters`` table.

Every function here runs inside a transaction that the caller opened with
``BEGIN IMMEDIATE``, so that two processes opening the same new or old file do
not both create or migrate it.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3

from missive.errors import MissiveError

logger = logging.getLogger(__name__)

#: The version this distribution writes.
SCHEMA_VERSION = 2

#: The table of the current version.
TABLE = "dead_letters"

#: The table of version 1 (Missive 0.8.1).
LEGACY_TABLE = "messages"

COLUMNS = (
    "message_id",
    "format",
    "raw_data",
    "reason",
    "inserted",
    "updated",
    "attempts",
    "error_type",
    "traceback",
    "adapter",
    "delivery_count",
    "transport_id",
    "attributes",
)

_CREATE = f"""
CREATE TABLE {TABLE} (
    message_id BLOB PRIMARY KEY NOT NULL,
    format TEXT NOT NULL,
    raw_data BLOB NOT NULL,
    reason TEXT NOT NULL,
    inserted TEXT NOT NULL,
    updated TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    error_type TEXT,
    traceback TEXT,
    adapter TEXT,
    delivery_count INTEGER,
    transport_id TEXT,
    attributes TEXT
);
CREATE INDEX {TABLE}_inserted ON {TABLE} (inserted);
"""

_LEGACY_COLUMNS = ("message_id", "message_class", "raw_data", "reason", "inserted")

#: How version 1 was created, kept to build old files in tests.
LEGACY_CREATE = f"""
CREATE TABLE {LEGACY_TABLE} (
    message_id BLOB PRIMARY KEY,
    message_class TEXT NOT NULL,
    raw_data BLOB NOT NULL,
    reason TEXT NOT NULL,
    inserted TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""


class SQLiteDLQError(MissiveError):
    """Base class of the errors raised when opening a SQLite DLQ."""


class CannotOpenDLQ(SQLiteDLQError, OSError):
    """The path cannot be opened as a SQLite database."""


class NotADLQ(SQLiteDLQError, ValueError):
    """The file is not a Missive dead letter queue, or one too new to read."""


def format_time(moment: datetime.datetime) -> str:
    """Return the stored form of a time: ISO 8601 in UTC, fixed width.

    Fixed width makes the text sort as the times do, so SQL compares them.
    """
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime.datetime:
    """Return the timezone-aware UTC time of a stored timestamp."""
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def prepare(connection: sqlite3.Connection, location: str, *, create: bool) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`; return the version found.

    :param create: make the tables when the database is empty.
    :raises NotADLQ: the file holds other tables, a newer schema, or (without
        ``create``) nothing.
    """
    version = _version_of(connection, location)
    if version == SCHEMA_VERSION:
        return version
    if version == 0:
        if not create:
            raise NotADLQ(f"{location} is an empty database, not a Missive DLQ")
        _create_tables(connection)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        logger.info("created a SQLite DLQ in %s", location)
        return version

    _migrate_from_v1(connection, location)
    return version


def _create_tables(connection: sqlite3.Connection) -> None:
    # executescript() would commit the caller's transaction first.
    for statement in _CREATE.split(";"):
        if statement.strip():
            connection.execute(statement)


def _version_of(connection: sqlite3.Connection, location: str) -> int:
    """Return the schema version of the file, 0 for an empty database."""
    tables = {
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table'"
        )
    }
    (user_version,) = connection.execute("PRAGMA user_version").fetchone()

    if TABLE in tables:
        if user_version > SCHEMA_VERSION:
            raise NotADLQ(
                f"{location} has DLQ schema version {user_version}, newer than "
                f"this missive-sqlite-dlq supports ({SCHEMA_VERSION}): upgrade "
                "missive-sqlite-dlq to read it"
            )
        _check_columns(connection, location, TABLE, COLUMNS)
        return SCHEMA_VERSION
    if LEGACY_TABLE in tables and user_version in (0, 1):
        _check_columns(connection, location, LEGACY_TABLE, _LEGACY_COLUMNS)
        return 1
    if not tables and user_version == 0:
        return 0
    listed = ", ".join(sorted(tables)) if tables else "none"
    raise NotADLQ(
        f"{location} is a SQLite database but not a Missive DLQ "
        f"(user_version {user_version}, tables: {listed})"
    )


def _check_columns(
    connection: sqlite3.Connection,
    location: str,
    table: str,
    expected: tuple[str, ...],
) -> None:
    found = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
    missing = [column for column in expected if column not in found]
    if missing:
        raise NotADLQ(
            f"{location} has a {table!r} table without the columns of a Missive "
            f"DLQ (missing: {', '.join(missing)})"
        )


def _migrate_from_v1(connection: sqlite3.Connection, location: str) -> None:
    """Copy every 0.8.1 row into the current table, then drop the old one.

    The message class's name becomes the name of the registered format whose
    class has that name; an unknown class becomes ``raw``, so the bytes stay
    readable.  Nothing stored is ever executed or unpickled.
    """
    formats = _formats_by_class_name()
    _create_tables(connection)

    rows = connection.execute(
        f"SELECT message_id, message_class, raw_data, reason, inserted "
        f"FROM {LEGACY_TABLE} ORDER BY rowid"
    ).fetchall()
    unknown: set[str] = set()
    for message_id, message_class, raw_data, reason, inserted in rows:
        class_name = str(message_class).replace(":", ".").rpartition(".")[2]
        format_name = formats.get(class_name)
        if format_name is None:
            unknown.add(str(message_class))
            format_name = "raw"
        stored = format_time(_legacy_time(inserted))
        connection.execute(
            f"INSERT INTO {TABLE} (message_id, format, raw_data, reason, inserted, "
            "updated, attempts) VALUES (?, ?, ?, ?, ?, ?, 1)",
            (
                _as_bytes(message_id),
                format_name,
                _as_bytes(raw_data),
                str(reason),
                stored,
                stored,
            ),
        )
    connection.execute(f"DROP TABLE {LEGACY_TABLE}")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    if unknown:
        logger.warning(
            "migrating %s: no installed message format for %s; those messages "
            "are read back as raw messages",
            location,
            ", ".join(sorted(unknown)),
        )
    logger.info(
        "migrated the DLQ in %s from schema 1 to %d (%d messages)",
        location,
        SCHEMA_VERSION,
        len(rows),
    )


def _formats_by_class_name() -> dict[str, str]:
    """Map each installed message class's name to its format name."""
    from missive import messages

    found: dict[str, str] = {}
    for name in messages.names():
        try:
            found.setdefault(messages.load(name).__name__, name)
        except MissiveError as exc:
            logger.warning("skipping message format %r: %s", name, exc)
    return found


def _legacy_time(value: object) -> datetime.datetime:
    """Read a 0.8.1 timestamp: naive UTC text, or a Unix time."""
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    try:
        return parse_time(str(value))
    except ValueError:
        logger.warning("unreadable timestamp %r in an old DLQ; using now", value)
        return datetime.datetime.now(datetime.UTC)


def _as_bytes(value: object) -> bytes:
    """Old rows may hold text where bytes belong; store bytes."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
