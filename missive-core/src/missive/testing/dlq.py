"""The DLQ contract: what every dead letter queue backend must do.

Subclass :class:`DLQContract` in a test module and say how to build the
backend::

    pytest_plugins = ["missive.testing"]

    class TestMyDLQ(DLQContract):
        def make_dlq(self, tmp_path):
            return MyDLQ(tmp_path / "dlq.db")
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from missive import messages
from missive.contexts import HandlingContext, Outcome
from missive.messages import Message, RawMessage
from missive.processor import Processor

#: A DLQ as the processor sees it.
DLQ = MutableMapping[bytes, tuple[Message, str]]

#: A payload every built-in format accepts: a JSON object, non-ASCII included.
_JSON_OBJECT = b'{"order": 7, "items": ["\\u00e9", 2.5], "note": null}'


class DLQContract:
    """The contract of a dead letter queue backend, as a suite of pytest checks.

    A subclass named ``Test...`` implements :meth:`make_dlq` (and
    :meth:`close_dlq` if the backend holds resources).  The checks verify the
    whole ``MutableMapping`` protocol keyed by message id, ``oldest()``, a
    round trip of every registered message format (class, id and bytes come
    back), writers in several threads at once, and that a processor stores
    its failures in it.
    """

    #: Whether the backend offers ``oldest()``; a plain ``dict`` does not.
    has_oldest: ClassVar[bool] = True
    #: How many threads write at once in the concurrency check.
    writer_threads: ClassVar[int] = 4
    #: How many entries each of those threads writes.
    writes_per_thread: ClassVar[int] = 50

    def make_dlq(self, tmp_path: Path) -> DLQ:
        """Return a new, empty DLQ; ``tmp_path`` is this check's own directory."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement make_dlq(tmp_path)"
        )

    def close_dlq(self, dlq: DLQ) -> None:
        """Release what :meth:`make_dlq` opened; the default does nothing."""

    @pytest.fixture
    def dlq_under_test(self, tmp_path: Path) -> Iterator[DLQ]:
        """The DLQ of one check, closed afterwards."""
        dlq = self.make_dlq(tmp_path)
        yield dlq
        self.close_dlq(dlq)

    # --- the mapping ---------------------------------------------------------

    def test_a_new_dlq_is_empty(self, dlq_under_test: DLQ) -> None:
        assert len(dlq_under_test) == 0
        assert list(dlq_under_test) == []
        assert b"absent" not in dlq_under_test
        with pytest.raises(KeyError):
            dlq_under_test[b"absent"]
        with pytest.raises(KeyError):
            del dlq_under_test[b"absent"]

    def test_a_stored_message_reads_back_with_its_reason(
        self, dlq_under_test: DLQ
    ) -> None:
        message = RawMessage(b"payload", b"id-1")

        dlq_under_test[b"id-1"] = (message, "no matching handlers")

        read, reason = dlq_under_test[b"id-1"]
        assert type(read) is RawMessage
        assert read.message_id == b"id-1"
        assert read.raw_data == b"payload"
        assert reason == "no matching handlers"

    def test_the_whole_mutable_mapping_protocol(self, dlq_under_test: DLQ) -> None:
        entries = {
            f"id-{n}".encode(): (RawMessage(b"p%d" % n, f"id-{n}".encode()), f"r{n}")
            for n in range(4)
        }

        dlq_under_test.update(entries)

        assert len(dlq_under_test) == 4
        assert sorted(dlq_under_test) == sorted(entries)
        assert sorted(dlq_under_test.keys()) == sorted(entries)
        assert sorted(reason for _, reason in dlq_under_test.values()) == [
            "r0",
            "r1",
            "r2",
            "r3",
        ]
        assert {k: r for k, (_, r) in dlq_under_test.items()} == {
            k: r for k, (_, r) in entries.items()
        }
        assert b"id-2" in dlq_under_test
        assert dlq_under_test.get(b"absent") is None
        assert dlq_under_test == entries

        message, reason = dlq_under_test.pop(b"id-0")
        assert (message.raw_data, reason) == (b"p0", "r0")
        assert b"id-0" not in dlq_under_test
        assert dlq_under_test.pop(b"id-0", None) is None

        key, (message, reason) = dlq_under_test.popitem()
        assert key == message.message_id
        assert key not in dlq_under_test
        assert len(dlq_under_test) == 2

        new = RawMessage(b"p9", b"id-9")
        assert dlq_under_test.setdefault(b"id-9", (new, "r9"))[1] == "r9"
        assert dlq_under_test.setdefault(b"id-9", (new, "other"))[1] == "r9"

        dlq_under_test.clear()
        assert len(dlq_under_test) == 0
        assert list(dlq_under_test.items()) == []

    def test_storing_an_id_again_replaces_its_reason(self, dlq_under_test: DLQ) -> None:
        message = RawMessage(b"payload", b"again")
        dlq_under_test[b"again"] = (message, "first failure")

        dlq_under_test[b"again"] = (message, "second failure")

        assert len(dlq_under_test) == 1
        assert dlq_under_test[b"again"][1] == "second failure"

    def test_deleting_removes_only_that_entry(self, dlq_under_test: DLQ) -> None:
        for key in (b"keep", b"drop"):
            dlq_under_test[key] = (RawMessage(b"x", key), "reason")

        del dlq_under_test[b"drop"]

        assert list(dlq_under_test) == [b"keep"]
        with pytest.raises(KeyError):
            del dlq_under_test[b"drop"]

    # --- messages come back as they went in ------------------------------------

    def test_every_registered_message_format_round_trips(
        self, dlq_under_test: DLQ
    ) -> None:
        names = messages.names()
        assert names, "no message format is registered"
        stored: dict[bytes, Message] = {}
        for name in names:
            message = messages.load(name)(_JSON_OBJECT, f"format-{name}".encode())
            dlq_under_test[message.message_id] = (message, f"failed as {name}")
            stored[message.message_id] = message

        for message_id, original in stored.items():
            read, reason = dlq_under_test[message_id]
            assert type(read) is type(original), (
                f"a {type(original).__name__} came back as a {type(read).__name__}"
            )
            assert read.message_id == original.message_id
            assert read.raw_data == original.raw_data
            assert reason == f"failed as {original.format_name}"

    def test_binary_payloads_and_ids_round_trip(self, dlq_under_test: DLQ) -> None:
        message_id = b"\x00\xff binary id"
        message = RawMessage(bytes(range(256)) * 2, message_id)

        dlq_under_test[message_id] = (message, "binary")

        read, _ = dlq_under_test[message_id]
        assert read.raw_data == bytes(range(256)) * 2
        assert read.message_id == message_id
        assert list(dlq_under_test) == [message_id]

    # --- oldest() ------------------------------------------------------------

    def test_oldest_is_the_first_stored_with_an_aware_utc_time(
        self, dlq_under_test: DLQ
    ) -> None:
        oldest = self._oldest(dlq_under_test)
        before = datetime.datetime.now(datetime.UTC)
        for n in range(3):
            key = f"old-{n}".encode()
            dlq_under_test[key] = (RawMessage(b"%d" % n, key), f"reason {n}")

        message, reason, inserted = oldest()
        assert (message.message_id, reason) == (b"old-0", "reason 0")
        assert inserted.utcoffset() == datetime.timedelta(0)
        slack = datetime.timedelta(seconds=1)
        assert before - slack <= inserted <= datetime.datetime.now(datetime.UTC)

        del dlq_under_test[b"old-0"]
        assert oldest()[0].message_id == b"old-1"

    def test_oldest_of_an_empty_dlq_raises_lookup_error(
        self, dlq_under_test: DLQ
    ) -> None:
        oldest = self._oldest(dlq_under_test)

        with pytest.raises(LookupError):
            oldest()

    # --- concurrency and use by a processor ---------------------------------

    def test_concurrent_writers_lose_nothing(self, dlq_under_test: DLQ) -> None:
        errors: list[BaseException] = []
        start = threading.Barrier(self.writer_threads)

        def write(writer: int) -> None:
            try:
                start.wait(timeout=30)
                for n in range(self.writes_per_thread):
                    key = f"w{writer}-{n}".encode()
                    dlq_under_test[key] = (RawMessage(key, key), f"writer {writer}")
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=write, args=(writer,))
            for writer in range(self.writer_threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert errors == []
        assert len(dlq_under_test) == self.writer_threads * self.writes_per_thread
        for writer in range(self.writer_threads):
            for n in range(self.writes_per_thread):
                key = f"w{writer}-{n}".encode()
                message, reason = dlq_under_test[key]
                assert (message.raw_data, reason) == (key, f"writer {writer}")

    def test_a_processor_stores_its_failures_in_it(self, dlq_under_test: DLQ) -> None:
        processor: Processor[RawMessage] = Processor()

        @processor.handle_for(lambda message: True)
        def fail(message: RawMessage, ctx: HandlingContext[RawMessage]) -> None:
            raise ValueError("the handler failed")

        processor.set_dlq(dlq_under_test)  # type: ignore[arg-type]
        message = RawMessage(b"order 7")

        with processor.test_client() as client:
            outcome = client.send(message)

        assert outcome is Outcome.DEAD_LETTERED
        assert client.acked == [message]
        stored, reason = dlq_under_test[message.message_id]
        assert stored.raw_data == b"order 7"
        assert reason == "the handler failed"

    def _oldest(self, dlq: DLQ) -> Any:
        oldest = getattr(dlq, "oldest", None)
        if not self.has_oldest:
            pytest.skip(f"{type(self).__name__} declares has_oldest = False")
        assert callable(oldest), (
            f"{type(dlq).__name__} has no oldest(); set has_oldest = False if "
            "that is intended"
        )
        return oldest
