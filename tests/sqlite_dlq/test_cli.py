"""``missive dlq ...``, run through the real ``missive`` console script."""

from __future__ import annotations

import base64
import datetime
import json
import os
import pty
import sqlite3
import subprocess
from pathlib import Path

import pytest

from missive.messages import DictMessage, JSONMessage, Message, RawMessage
from missive_sqlite_dlq import SQLiteDLQ
from missive_sqlite_dlq.commands import display_id, format_age, parse_age, parse_id

from .conftest import PROCESS_TIMEOUT, missive_script, run_missive

REPLAY_PROCESSOR = """
from missive import JSONMessage, Processor

processor: Processor[JSONMessage] = Processor()


def kind(name):
    return lambda message: message.get_json().get("kind") == name


@processor.handle_for(kind("transient"))
def now_works(message, ctx):
    ctx.ack()


@processor.handle_for(kind("broken"))
def still_broken(message, ctx):
    raise RuntimeError(f"still broken: {message.get_json()['n']}")


@processor.handle_for(kind("later"))
def not_yet(message, ctx):
    ctx.nack()
"""

TEN_DAYS_AGO = (
    datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10)
).isoformat(timespec="microseconds")


@pytest.fixture
def filled(db_path: Path) -> Path:
    """A DLQ holding JSON, binary and old entries, as a processor left them."""
    dlq: SQLiteDLQ[Message] = SQLiteDLQ(db_path)
    dlq.add_dead_letter(
        JSONMessage(b'{"kind": "transient", "n": 1}', b"msg-transient"),
        "connection reset by peer",
        {"error_type": "builtins.ConnectionResetError", "adapter": "StdinAdapter"},
    )
    dlq.add_dead_letter(
        DictMessage(b'{"kind": "broken", "n": 2}', b"msg-broken"),
        "KeyError: 'total'",
        {
            "error_type": "builtins.KeyError",
            "traceback": "Traceback (most recent call last):\nKeyError: 'total'\n",
        },
    )
    dlq[b"msg-later"] = (JSONMessage(b'{"kind": "later"}', b"msg-later"), "busy")
    dlq[b"\xff\x00bin"] = (RawMessage(b"\x89PNG\x00\xff", b"\xff\x00bin"), "binary")
    dlq[b"msg-old"] = (RawMessage(b"ancient text", b"msg-old"), "old failure")
    dlq.close()
    connection = sqlite3.connect(db_path)
    connection.execute(
        "UPDATE dead_letters SET inserted = ?, updated = ? WHERE message_id = ?",
        (TEN_DAYS_AGO, TEN_DAYS_AGO, b"msg-old"),
    )
    connection.commit()
    connection.close()
    return db_path


def _ids_listed(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines()[1:]]


# --- list ------------------------------------------------------------------


def test_list_shows_id_age_attempts_format_size_and_reason(filled: Path) -> None:
    result = run_missive("dlq", "list", filled)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "AGE", "ATTEMPTS", "FORMAT", "SIZE", "REASON"]
    assert _ids_listed(result.stdout) == [
        "msg-old",
        "msg-transient",
        "msg-broken",
        "msg-later",
        "hex:ff0062696e",
    ]
    old = lines[1].split()
    assert old[:5] == ["msg-old", "10d", "1", "raw", "12"]
    assert lines[1].endswith("old failure")
    assert lines[3].split()[3:5] == ["dict", "26"]
    assert "5 dead letters" in result.stderr


def test_list_filters_by_reason_and_age(filled: Path) -> None:
    by_reason = run_missive("dlq", "list", filled, "--reason", "KeyError")
    older = run_missive("dlq", "list", filled, "--older-than", "7d")
    newer = run_missive("dlq", "list", filled, "--newer-than", "1h")

    assert _ids_listed(by_reason.stdout) == ["msg-broken"]
    assert _ids_listed(older.stdout) == ["msg-old"]
    assert "msg-old" not in _ids_listed(newer.stdout)
    assert len(_ids_listed(newer.stdout)) == 4


def test_list_rejects_a_malformed_age(filled: Path) -> None:
    result = run_missive("dlq", "list", filled, "--older-than", "soon")

    assert result.returncode == 2
    assert "is not an age" in result.stderr


# --- show ------------------------------------------------------------------


def test_show_pretty_prints_a_json_payload_with_details(filled: Path) -> None:
    result = run_missive("dlq", "show", filled, "msg-broken")

    assert result.returncode == 0, result.stderr
    assert "format:         dict" in result.stdout
    assert "reason:         KeyError: 'total'" in result.stdout
    assert "error type:     builtins.KeyError" in result.stdout
    assert "Traceback (most recent call last):" in result.stdout
    payload = result.stdout.split("payload (JSON):\n", 1)[1]
    assert payload == '{\n  "kind": "broken",\n  "n": 2\n}\n'


def test_show_prints_binary_payload_as_base64_and_accepts_hex_ids(
    filled: Path,
) -> None:
    result = run_missive("dlq", "show", filled, "hex:ff0062696e")

    assert result.returncode == 0, result.stderr
    payload = result.stdout.split("payload (binary, base64):\n", 1)[1]
    assert base64.b64decode(payload.strip()) == b"\x89PNG\x00\xff"


def test_show_raw_writes_the_payload_bytes(filled: Path) -> None:
    result = subprocess.run(
        [missive_script(), "dlq", "show", str(filled), "hex:ff0062696e", "--raw"],
        capture_output=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )

    assert result.returncode == 0
    assert result.stdout == b"\x89PNG\x00\xff"


def test_show_of_an_unknown_id_is_a_one_line_error(filled: Path) -> None:
    result = run_missive("dlq", "show", filled, "nope")

    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        result.stderr == f"missive: error: no dead letter with id 'nope' in {filled}\n"
    )


@pytest.mark.parametrize("command", ["list", "show", "export", "purge", "replay"])
def test_a_missing_file_is_a_one_line_error_and_is_not_created(
    tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "missing.db"
    extra = {
        "show": ["some-id"],
        "replay": ["--processor", "x:y", "--all"],
        "purge": ["--yes"],
    }.get(command, [])

    result = run_missive("dlq", command, missing, *extra)

    assert result.returncode == 1
    assert result.stderr == f"missive: error: {missing}: no such DLQ file\n"
    assert not missing.exists()


def test_a_file_that_is_not_a_dlq_is_a_one_line_error(tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("hello\n" * 1000)

    result = run_missive("dlq", "list", other)

    assert result.returncode == 1
    assert result.stderr.startswith(f"missive: error: {other} is not a Missive DLQ")
    assert result.stderr.count("\n") == 1


# --- export ----------------------------------------------------------------


def test_export_writes_json_lines_with_base64_for_binary(filled: Path) -> None:
    result = run_missive("dlq", "export", filled)

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["id"] for record in records] == [
        "msg-old",
        "msg-transient",
        "msg-broken",
        "msg-later",
        "hex:ff0062696e",
    ]
    by_id = {record["id"]: record for record in records}
    assert by_id["msg-broken"]["payload_encoding"] == "utf-8"
    assert json.loads(by_id["msg-broken"]["payload"]) == {"kind": "broken", "n": 2}
    assert by_id["msg-broken"]["format"] == "dict"
    assert by_id["msg-broken"]["error_type"] == "builtins.KeyError"
    assert by_id["msg-transient"]["adapter"] == "StdinAdapter"
    binary = by_id["hex:ff0062696e"]
    assert binary["payload_encoding"] == "base64"
    assert base64.b64decode(binary["payload"]) == b"\x89PNG\x00\xff"
    assert parse_id(binary["id"]) == b"\xff\x00bin"
    assert datetime.datetime.fromisoformat(by_id["msg-old"]["inserted"]).tzinfo


def test_export_to_a_file_with_a_filter(filled: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"

    result = run_missive("dlq", "export", filled, "--reason", "old", "-o", output)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [record["id"] for record in records] == ["msg-old"]
    assert records[0]["payload"] == "ancient text"


# --- replay ----------------------------------------------------------------


@pytest.fixture
def processor_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "replay_processor.py").write_text(REPLAY_PROCESSOR)
    return folder


def test_replay_removes_acked_keeps_failures_with_new_reason_and_attempt(
    filled: Path, processor_dir: Path
) -> None:
    result = run_missive(
        "dlq",
        "replay",
        filled,
        "--processor",
        "replay_processor:processor",
        "msg-transient",
        "msg-broken",
        "msg-later",
        cwd=processor_dir,
    )

    assert result.returncode == 3, result.stderr
    assert "msg-transient: acked, removed" in result.stdout
    assert "msg-broken: failed again (attempt 2): still broken: 2" in result.stdout
    assert "msg-later: nacked, kept" in result.stdout
    assert "1 removed, 1 failed again, 1 nacked" in result.stdout
    dlq: SQLiteDLQ[Message] = SQLiteDLQ(filled)
    assert b"msg-transient" not in dlq
    broken = dlq.dead_letter(b"msg-broken")
    assert broken.reason == "still broken: 2"
    assert broken.attempts == 2
    assert broken.error_type == "builtins.RuntimeError"
    assert broken.adapter == "ReplayAdapter"
    assert broken.format_name == "dict"
    assert dlq.dead_letter(b"msg-later").attempts == 1
    assert len(dlq) == 4


def test_replay_all_counts_attempts_across_runs(
    filled: Path, processor_dir: Path
) -> None:
    for _ in range(2):
        result = run_missive(
            "dlq",
            "replay",
            filled,
            "--processor",
            "replay_processor:processor",
            "--all",
            cwd=processor_dir,
        )
        assert result.returncode == 3, result.stderr

    dlq: SQLiteDLQ[Message] = SQLiteDLQ(filled)
    assert b"msg-transient" not in dlq
    assert dlq.dead_letter(b"msg-broken").attempts == 3
    # No handler matches a raw payload that is not JSON: it fails again too.
    assert dlq.dead_letter(b"msg-old").attempts == 3
    assert dlq.dead_letter(b"msg-later").attempts == 1


def test_replay_that_acks_everything_exits_zero(
    filled: Path, processor_dir: Path
) -> None:
    result = run_missive(
        "dlq",
        "replay",
        filled,
        "--processor",
        "replay_processor:processor",
        "msg-transient",
        cwd=processor_dir,
    )

    assert result.returncode == 0, result.stderr
    assert "1 removed, 0 failed again, 0 nacked" in result.stdout


def test_replay_dry_run_changes_nothing(filled: Path, processor_dir: Path) -> None:
    result = run_missive(
        "dlq",
        "replay",
        filled,
        "--processor",
        "replay_processor:processor",
        "--all",
        "--dry-run",
        cwd=processor_dir,
    )

    assert result.returncode == 0, result.stderr
    assert "would replay msg-transient (json, attempt 2)" in result.stdout
    assert len(result.stdout.splitlines()) == 5
    dlq: SQLiteDLQ[Message] = SQLiteDLQ(filled)
    assert len(dlq) == 5
    assert {entry.attempts for entry in dlq.dead_letters()} == {1}


def test_replay_of_an_unknown_id_changes_nothing(
    filled: Path, processor_dir: Path
) -> None:
    result = run_missive(
        "dlq",
        "replay",
        filled,
        "--processor",
        "replay_processor:processor",
        "msg-transient",
        "nope",
        cwd=processor_dir,
    )

    assert result.returncode == 1
    assert (
        result.stderr == f"missive: error: no dead letter with id 'nope' in {filled}\n"
    )
    assert b"msg-transient" in SQLiteDLQ(filled)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("no_such_module:processor", "cannot import 'no_such_module'"),
        ("replay_processor:missing", "has no attribute 'missing'"),
        ("replay_processor:kind", "is a function, not a missive Processor"),
    ],
)
def test_replay_with_a_processor_that_cannot_be_imported_is_an_error(
    filled: Path, processor_dir: Path, target: str, expected: str
) -> None:
    result = run_missive(
        "dlq", "replay", filled, "--processor", target, "--all", cwd=processor_dir
    )

    assert result.returncode == 1
    assert result.stderr.startswith("missive: error: ")
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert len(SQLiteDLQ(filled)) == 5


def test_replay_needs_ids_or_all(filled: Path, processor_dir: Path) -> None:
    result = run_missive(
        "dlq", "replay", filled, "--processor", "replay_processor:processor"
    )

    assert result.returncode == 1
    assert "either message ids or --all" in result.stderr


# --- purge -----------------------------------------------------------------


def test_purge_with_yes_deletes_what_the_filters_select(filled: Path) -> None:
    result = run_missive("dlq", "purge", filled, "--older-than", "1d", "--yes")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "deleted 1 dead letter\n"
    dlq: SQLiteDLQ[Message] = SQLiteDLQ(filled)
    assert b"msg-old" not in dlq
    assert len(dlq) == 4

    by_reason = run_missive("dlq", "purge", filled, "--reason", "binary", "-y")
    assert by_reason.stdout == "deleted 1 dead letter\n"
    assert b"\xff\x00bin" not in dlq
    everything = run_missive("dlq", "purge", filled, "--yes")
    assert everything.stdout == "deleted 3 dead letters\n"
    assert len(dlq) == 0


def test_purge_without_yes_and_without_a_terminal_refuses(filled: Path) -> None:
    result = run_missive("dlq", "purge", filled, stdin="yes\n")

    assert result.returncode == 1
    assert "stdin is not a terminal; pass --yes" in result.stderr
    assert len(SQLiteDLQ(filled)) == 5


def _purge_on_a_terminal(
    database: Path, answer: bytes
) -> subprocess.CompletedProcess[bytes]:
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [missive_script(), "dlq", "purge", str(database), "--reason", "old"],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(terminal)
        os.write(controller, answer)
        stdout, stderr = process.communicate(timeout=PROCESS_TIMEOUT)
    finally:
        os.close(controller)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_purge_on_a_terminal_deletes_after_yes(filled: Path) -> None:
    result = _purge_on_a_terminal(filled, b"y\n")

    assert result.returncode == 0, result.stderr
    assert b"Delete 1 dead letter from" in result.stderr
    assert result.stdout == b"deleted 1 dead letter\n"
    assert b"msg-old" not in SQLiteDLQ(filled)


def test_purge_on_a_terminal_keeps_everything_after_no(filled: Path) -> None:
    result = _purge_on_a_terminal(filled, b"n\n")

    assert result.returncode == 1
    assert b"nothing deleted" in result.stderr
    assert len(SQLiteDLQ(filled)) == 5


# --- the command itself ----------------------------------------------------


def test_dlq_without_a_subcommand_prints_help(filled: Path) -> None:
    result = run_missive("dlq")

    assert result.returncode == 2
    for command in ("list", "show", "export", "replay", "purge"):
        assert command in result.stdout


def test_ids_display_and_parse_back() -> None:
    for message_id in [b"1700000000000-0", b"\xff\x00", b"hex:abc", b"a b", b"\x1b[2J"]:
        assert parse_id(display_id(message_id)) == message_id
    assert display_id(b"1700000000000-0") == "1700000000000-0"
    assert display_id(b"a b").startswith("hex:")


def test_ages_parse_and_format() -> None:
    assert parse_age("90s") == datetime.timedelta(seconds=90)
    assert parse_age("1h30m") == datetime.timedelta(minutes=90)
    assert parse_age("2w") == datetime.timedelta(days=14)
    assert format_age(datetime.timedelta(seconds=45)) == "45s"
    assert format_age(datetime.timedelta(days=3, hours=4, minutes=5)) == "3d4h"
    assert format_age(datetime.timedelta(days=10)) == "10d"
    assert format_age(datetime.timedelta(0)) == "0s"


def test_replay_accepts_ids_before_the_processor_option(
    filled: Path, processor_dir: Path
) -> None:
    result = run_missive(
        "dlq",
        "replay",
        filled,
        "msg-transient",
        "--processor",
        "replay_processor:processor",
        cwd=processor_dir,
    )

    assert result.returncode == 0, result.stderr
    assert b"msg-transient" not in SQLiteDLQ(filled)


def test_every_subcommand_has_help() -> None:
    for command in ("list", "show", "export", "replay", "purge"):
        result = run_missive("dlq", command, "--help")

        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: missive dlq {command}")
