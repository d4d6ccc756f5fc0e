"""``missive dlq``: find, read, replay and purge the dead letters of a SQLite DLQ.

Registered in the ``missive.commands`` entry-point group as ``dlq``; core's
command line imports this module only when ``missive dlq`` is run.

Message ids are shown as text when they are printable UTF-8 and otherwise as
``hex:`` followed by their bytes in hexadecimal; both forms are accepted
wherever an id is expected.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from missive.adapters import Adapter
from missive.cli import CommandError, import_object, print_table
from missive.contexts import Outcome
from missive.messages import Message
from missive.plugins import hookimpl
from missive.processor import Processor
from missive_sqlite_dlq.store import DeadLetter, SQLiteDLQ

#: Exit status of ``replay`` when some messages stay in the DLQ.
EXIT_SOME_REMAIN = 3

#: Longest reason ``list`` prints before cutting it.
REASON_WIDTH = 60

_HEX_PREFIX = "hex:"
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGE_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
# Control characters, other than newline and tab, that could drive a terminal.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@hookimpl
def missive_add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "dlq",
        help="inspect, replay and purge a SQLite dead letter queue",
        description="Inspect, replay and purge the dead letters of a SQLite DLQ.",
    )
    parser.set_defaults(handler=lambda args: _print_help(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_list(commands)
    _add_show(commands)
    _add_export(commands)
    _add_replay(commands)
    _add_purge(commands)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", metavar="DB", help="the DLQ file")


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reason", metavar="TEXT", help="only dead letters whose reason contains TEXT"
    )
    parser.add_argument(
        "--older-than",
        metavar="AGE",
        type=parse_age,
        help="only dead letters first stored more than AGE ago (e.g. 90s, 15m, "
        "12h, 7d, 2w, 1h30m)",
    )
    parser.add_argument(
        "--newer-than",
        metavar="AGE",
        type=parse_age,
        help="only dead letters first stored less than AGE ago",
    )


# --- list --------------------------------------------------------------------


def _add_list(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "list",
        help="list dead letters, oldest first",
        description="List dead letters, oldest first: id, age, attempts, "
        "format, payload size and reason.",
    )
    _add_database(parser)
    _add_filters(parser)
    parser.set_defaults(handler=_run_list)


def _run_list(args: argparse.Namespace) -> int:
    dlq = _open(args.database)
    now = _now()
    rows = [
        [
            display_id(entry.message_id),
            format_age(now - entry.inserted),
            str(entry.attempts),
            entry.format_name,
            str(len(entry.raw_data)),
            _one_line(entry.reason, REASON_WIDTH),
        ]
        for entry in _selected(dlq, args)
    ]
    print_table(["ID", "AGE", "ATTEMPTS", "FORMAT", "SIZE", "REASON"], rows)
    print(f"{len(rows)} dead letter{'' if len(rows) == 1 else 's'}", file=sys.stderr)
    return 0


# --- show --------------------------------------------------------------------


def _add_show(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "show",
        help="show one dead letter and its payload",
        description="Show one dead letter: its details, its traceback and its "
        "payload, pretty-printed when it is JSON.",
    )
    _add_database(parser)
    parser.add_argument("message_id", metavar="ID", help="the message id")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="write only the payload's bytes, unchanged, to stdout",
    )
    parser.set_defaults(handler=_run_show)


def _run_show(args: argparse.Namespace) -> int:
    dlq = _open(args.database)
    entry = _find(dlq, args.message_id)
    if args.raw:
        sys.stdout.flush()
        sys.stdout.buffer.write(entry.raw_data)
        sys.stdout.buffer.flush()
        return 0

    now = _now()
    details = [
        ("id", display_id(entry.message_id)),
        ("format", entry.format_name),
        ("reason", entry.reason),
        ("first stored", f"{entry.inserted.isoformat()} ({_ago(now, entry.inserted)})"),
        ("last stored", f"{entry.updated.isoformat()} ({_ago(now, entry.updated)})"),
        ("attempts", str(entry.attempts)),
        ("error type", entry.error_type),
        ("adapter", entry.adapter),
        ("transport id", entry.transport_id),
        ("delivery count", _optional(entry.delivery_count)),
        ("attributes", json.dumps(entry.attributes) if entry.attributes else None),
        ("size", f"{len(entry.raw_data)} bytes"),
    ]
    for label, value in details:
        if value is not None:
            print(f"{label + ':':<16}{_safe(value)}")
    if entry.traceback:
        print("\ntraceback:")
        print(_safe(entry.traceback.rstrip("\n")))
    print(f"\npayload ({_describe_payload(entry.raw_data)}):")
    print(_render_payload(entry.raw_data))
    return 0


def _describe_payload(raw_data: bytes) -> str:
    if _as_json(raw_data) is not _NOT_JSON:
        return "JSON"
    if _as_text(raw_data) is not None:
        return "UTF-8 text"
    return "binary, base64"


def _render_payload(raw_data: bytes) -> str:
    decoded = _as_json(raw_data)
    if decoded is not _NOT_JSON:
        return json.dumps(decoded, indent=2, ensure_ascii=False)
    text = _as_text(raw_data)
    if text is not None:
        return _safe(text)
    return base64.b64encode(raw_data).decode("ascii")


_NOT_JSON = object()


def _as_json(raw_data: bytes) -> Any:
    try:
        return json.loads(raw_data)
    except ValueError:
        return _NOT_JSON


def _as_text(raw_data: bytes) -> str | None:
    try:
        return raw_data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# --- export ------------------------------------------------------------------


def _add_export(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "export",
        help="write dead letters as JSON lines",
        description="Write dead letters as JSON lines, oldest first. The "
        "payload is text when it is UTF-8 and base64 otherwise, as "
        "payload_encoding says.",
    )
    _add_database(parser)
    _add_filters(parser)
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of stdout"
    )
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    dlq = _open(args.database)
    if args.output is None:
        count = _export(_selected(dlq, args), sys.stdout)
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as output:
                count = _export(_selected(dlq, args), output)
        except OSError as exc:
            raise CommandError(f"cannot write {args.output}: {exc}") from exc
    print(f"exported {count} dead letter{'' if count == 1 else 's'}", file=sys.stderr)
    return 0


def _export(entries: Iterator[DeadLetter], output: TextIO) -> int:
    count = 0
    for entry in entries:
        output.write(json.dumps(export_record(entry), ensure_ascii=False) + "\n")
        count += 1
    output.flush()
    return count


def export_record(entry: DeadLetter) -> dict[str, Any]:
    """Return the JSON object ``export`` writes for one dead letter."""
    text = _as_text(entry.raw_data)
    return {
        "id": display_id(entry.message_id),
        "format": entry.format_name,
        "reason": entry.reason,
        "inserted": entry.inserted.isoformat(),
        "updated": entry.updated.isoformat(),
        "attempts": entry.attempts,
        "error_type": entry.error_type,
        "traceback": entry.traceback,
        "adapter": entry.adapter,
        "delivery_count": entry.delivery_count,
        "transport_id": entry.transport_id,
        "attributes": entry.attributes,
        "payload_encoding": "utf-8" if text is not None else "base64",
        "payload": text
        if text is not None
        else base64.b64encode(entry.raw_data).decode("ascii"),
    }


# --- replay ------------------------------------------------------------------


def _add_replay(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "replay",
        usage="missive dlq replay DB --processor MODULE:ATTR (ID [ID ...] | --all) "
        "[--dry-run]",
        help="run dead letters through a processor again",
        description="Run dead letters through a processor again. Those it acks "
        "are removed; those that fail again stay, with their new reason and "
        "one more attempt; those it nacks stay unchanged. Exit status: 0 when "
        f"every replayed message was acked, {EXIT_SOME_REMAIN} when some stay, "
        "1 on error.",
    )
    # Ids may come before or after --processor (``replay DB --processor P ID``),
    # and argparse gives a positional only the values before the first option:
    # so the file takes the ids before it, and --processor those after it.
    parser.add_argument(
        "targets",
        metavar="DB",
        nargs="+",
        help="the DLQ file, then the ids of the messages to replay, if any",
    )
    parser.add_argument(
        "--processor",
        metavar=("MODULE:ATTR", "ID"),
        nargs="+",
        required=True,
        help="the processor to run them through, then more ids",
    )
    parser.add_argument("--all", action="store_true", help="replay every dead letter")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be replayed; run no handler and change nothing",
    )
    parser.set_defaults(handler=_run_replay)


class ReplayAdapter(Adapter[Message]):
    """The adapter of a replay: the DLQ is the transport, so acks are recorded."""

    def __init__(self, processor: Processor[Message]) -> None:
        super().__init__(processor)
        self.acked: list[Message] = []
        self.nacked: list[Message] = []

    def ack(self, message: Message) -> None:
        self.acked.append(message)

    def nack(self, message: Message) -> None:
        self.nacked.append(message)


def _run_replay(args: argparse.Namespace) -> int:
    database, *message_ids = args.targets
    target, *more_ids = args.processor
    message_ids += more_ids
    if bool(message_ids) == bool(args.all):
        raise CommandError("replay needs either message ids or --all, not both")
    dlq = _open(database)
    processor = import_object(target)
    if not isinstance(processor, Processor):
        raise CommandError(
            f"{target} is a {type(processor).__name__}, not a missive Processor"
        )

    # Everything is read before anything runs, so an unknown id changes nothing.
    if args.all:
        entries = list(dlq.dead_letters())
    else:
        entries = [_find(dlq, message_id) for message_id in message_ids]
    messages = [_rebuild(entry) for entry in entries]

    if args.dry_run:
        for entry in entries:
            print(
                f"would replay {display_id(entry.message_id)} ({entry.format_name}, "
                f"attempt {entry.attempts + 1}): {_one_line(entry.reason, 200)}"
            )
        print(f"dry run: {len(entries)} to replay, nothing changed", file=sys.stderr)
        return 0

    return _replay(dlq, processor, entries, messages)


def _replay(
    dlq: SQLiteDLQ[Message],
    processor: Processor[Message],
    entries: list[DeadLetter],
    messages: list[Message],
) -> int:
    """Handle each message with ``dlq`` as the processor's DLQ; report each."""
    adapter = ReplayAdapter(processor)
    counts = {"removed": 0, "failed again": 0, "nacked": 0}
    previous = processor.dlq
    processor.set_dlq(dlq)
    try:
        with processor.context(Message, adapter) as ctx:
            for entry, message in zip(entries, messages, strict=True):
                shown = display_id(entry.message_id)
                outcome = ctx.handle(message)
                if outcome is Outcome.ACKED:
                    dlq.remove([(entry.message_id, entry.updated)])
                    counts["removed"] += 1
                    print(f"{shown}: acked, removed")
                elif outcome is Outcome.DEAD_LETTERED:
                    counts["failed again"] += 1
                    again = dlq.dead_letter(entry.message_id)
                    print(
                        f"{shown}: failed again (attempt {again.attempts}): "
                        f"{_one_line(again.reason, 200)}"
                    )
                else:
                    counts["nacked"] += 1
                    print(f"{shown}: {outcome.value}, kept")
    finally:
        processor.set_dlq(previous)

    print(", ".join(f"{count} {what}" for what, count in counts.items()))
    return 0 if counts["removed"] == len(entries) else EXIT_SOME_REMAIN


def _rebuild(entry: DeadLetter) -> Message:
    try:
        return entry.message()
    except Exception as exc:
        raise CommandError(
            f"cannot rebuild {display_id(entry.message_id)} as a "
            f"{entry.format_name!r} message: {exc}"
        ) from exc


# --- purge -------------------------------------------------------------------


def _add_purge(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "purge",
        help="delete dead letters",
        description="Delete the dead letters that match the filters (all of "
        "them without filters), after asking for confirmation on the terminal.",
    )
    _add_database(parser)
    _add_filters(parser)
    parser.add_argument(
        "-y", "--yes", action="store_true", help="do not ask for confirmation"
    )
    parser.set_defaults(handler=_run_purge)


def _run_purge(args: argparse.Namespace) -> int:
    dlq = _open(args.database)
    chosen = [(entry.message_id, entry.updated) for entry in _selected(dlq, args)]
    if not chosen:
        print("nothing to purge", file=sys.stderr)
        return 0

    what = f"{len(chosen)} dead letter{'' if len(chosen) == 1 else 's'}"
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError(
                f"refusing to purge {what} without confirmation: stdin is not a "
                "terminal; pass --yes"
            )
        print(f"Delete {what} from {args.database}? [y/N] ", end="", file=sys.stderr)
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("nothing deleted", file=sys.stderr)
            return 1

    deleted = dlq.remove(chosen)
    print(f"deleted {deleted} dead letter{'' if deleted == 1 else 's'}")
    if deleted < len(chosen):
        print(
            f"{len(chosen) - deleted} changed or vanished meanwhile and were kept",
            file=sys.stderr,
        )
    return 0


# --- shared ------------------------------------------------------------------


def _open(database: str) -> SQLiteDLQ[Message]:
    return SQLiteDLQ(database, create=False)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _selected(
    dlq: SQLiteDLQ[Message], args: argparse.Namespace
) -> Iterator[DeadLetter]:
    now = _now()
    return dlq.dead_letters(
        reason=args.reason,
        inserted_before=None if args.older_than is None else now - args.older_than,
        inserted_after=None if args.newer_than is None else now - args.newer_than,
    )


def _find(dlq: SQLiteDLQ[Message], shown: str) -> DeadLetter:
    try:
        return dlq.dead_letter(parse_id(shown))
    except KeyError:
        raise CommandError(
            f"no dead letter with id {shown!r} in {dlq.location}"
        ) from None


def display_id(message_id: bytes) -> str:
    """Return the form of a message id that the commands print and accept."""
    try:
        text = message_id.decode("utf-8")
    except UnicodeDecodeError:
        return _HEX_PREFIX + message_id.hex()
    if text.startswith(_HEX_PREFIX) or not text.isprintable() or " " in text:
        return _HEX_PREFIX + message_id.hex()
    return text


def parse_id(shown: str) -> bytes:
    """Return the message id that :func:`display_id` printed as ``shown``."""
    if shown.startswith(_HEX_PREFIX):
        try:
            return bytes.fromhex(shown[len(_HEX_PREFIX) :])
        except ValueError:
            raise CommandError(f"{shown!r} is not valid hexadecimal") from None
    return shown.encode("utf-8")


def parse_age(text: str) -> datetime.timedelta:
    """Parse an age such as ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` or ``1h30m``."""
    compact = text.strip().lower()
    parts = _AGE_PART.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age such as 90s, 15m, 12h, 7d, 2w or 1h30m"
        )
    return datetime.timedelta(
        seconds=sum(float(number) * _AGE_UNITS[unit] for number, unit in parts)
    )


def format_age(age: datetime.timedelta) -> str:
    """Return an age in at most its two largest units: ``45s``, ``12m``, ``3d4h``."""
    seconds = max(0, int(age.total_seconds()))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount or parts:
            parts.append(f"{amount}{unit}")
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].startswith("0"):
        parts.pop()
    return "".join(parts) or "0s"


def _ago(now: datetime.datetime, then: datetime.datetime) -> str:
    return f"{format_age(now - then)} ago"


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def _safe(text: str) -> str:
    """Escape control characters that would otherwise reach the terminal."""
    return _UNSAFE.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _one_line(text: str, width: int) -> str:
    line = _safe(text.replace("\r", " ").replace("\n", " ").replace("\t", " "))
    return line if len(line) <= width else line[: width - 3] + "..."
