"""The conformance kit fails deliberately broken adapters, DLQs and formats.

Each broken implementation differs from a correct reference in one way.  The
kit's suites run against them in a separate pytest process (a broken adapter
may leave threads or signal handlers behind); each violation must fail the
check that covers it, with a message that says what went wrong, and the
reference must pass every check.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

BROKEN = textwrap.dedent(
    '''
    import queue
    import signal
    import threading
    import time
    from collections.abc import Iterator, MutableMapping

    from missive import Message, ProcessingContext, RawMessage, RunnableAdapter
    from missive.errors import MessageDecodeError
    from missive.testing import AdapterContract, DLQContract, MessageFormatContract

    pytest_plugins = ["missive.testing"]


    class Bus:
        """An in-memory transport that records acks and nacks by message id."""

        def __init__(self):
            self.inbox = queue.Queue()
            self.acked = []
            self.nacked = []


    class QueueAdapter(RunnableAdapter):
        """A correct adapter over Bus: the reference."""

        def __init__(self, message_cls, processor, bus):
            super().__init__(message_cls, processor)
            self.bus = bus

        def consume(self, ctx):
            while not self.stopping:
                try:
                    payload = self.bus.inbox.get(timeout=0.02)
                except queue.Empty:
                    continue
                self.deliver(ctx, self.message_cls(payload, payload))

        def deliver(self, ctx, message):
            ctx.handle(message)

        def ack(self, message):
            self.bus.acked.append(message.message_id)

        def nack(self, message):
            self.bus.nacked.append(message.message_id)


    class QueueContract(AdapterContract):
        timeout = 3.0
        quiet_period = 0.2
        adapter_cls = QueueAdapter

        def make_adapter(self, processor):
            self.bus = Bus()
            return self.adapter_cls(RawMessage, processor, self.bus)

        def publish(self, adapter, payload):
            self.bus.inbox.put(payload)
            return payload

        def transport_outcome(self, adapter, receipt):
            if receipt in self.bus.acked:
                return "acked"
            if receipt in self.bus.nacked:
                return "nacked"
            return None


    class TestReferenceAdapter(QueueContract):
        pass


    class DropsMessages(QueueAdapter):
        def deliver(self, ctx, message):
            pass


    class TestDropsMessages(QueueContract):
        adapter_cls = DropsMessages


    class ReusesOneId(QueueAdapter):
        def deliver(self, ctx, message):
            ctx.handle(self.message_cls(message.raw_data, b"always-the-same"))


    class TestReusesOneId(QueueContract):
        adapter_cls = ReusesOneId


    class AckNeverReachesTheBus(QueueAdapter):
        def ack(self, message):
            pass


    class TestAckNeverReachesTheBus(QueueContract):
        adapter_cls = AckNeverReachesTheBus


    class AcksOnNack(QueueAdapter):
        def nack(self, message):
            self.bus.acked.append(message.message_id)


    class TestAcksOnNack(QueueContract):
        adapter_cls = AcksOnNack


    class AcksWhatFailed(QueueAdapter):
        """Catches every failure and acks it: the message is lost."""

        def deliver(self, ctx, message):
            try:
                ctx.handle(message)
            except Exception:
                self.ack(message)


    class TestAcksWhatFailed(QueueContract):
        adapter_cls = AcksWhatFailed


    class RoutesByItself(QueueAdapter):
        """Calls the first handler directly: no routing, no DLQ policy."""

        def deliver(self, ctx, message):
            [handler] = ctx.processor._handlers.values()
            with ctx.handling_context(message) as handling:
                handler(message, handling)


    class TestRoutesByItself(QueueContract):
        adapter_cls = RoutesByItself


    class SkipsProcessingHooks(QueueAdapter):
        def run(self):
            self.consume(ProcessingContext(self.message_cls, self, self.processor))


    class TestSkipsProcessingHooks(QueueContract):
        adapter_cls = SkipsProcessingHooks


    class IgnoresStop(QueueAdapter):
        def consume(self, ctx):
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                try:
                    payload = self.bus.inbox.get(timeout=0.02)
                except queue.Empty:
                    continue
                ctx.handle(self.message_cls(payload, payload))


    class TestIgnoresStop(QueueContract):
        adapter_cls = IgnoresStop


    class StopsMidMessage(QueueAdapter):
        """Returns from run() at once on stop, abandoning the message."""

        def stop(self):
            super().stop()
            self.abandon = True

        def deliver(self, ctx, message):
            worker = threading.Thread(target=ctx.handle, args=(message,), daemon=True)
            worker.start()
            while worker.is_alive() and not getattr(self, "abandon", False):
                worker.join(0.01)


    class TestStopsMidMessage(QueueContract):
        adapter_cls = StopsMidMessage


    class IgnoresSigterm(QueueAdapter):
        def run(self):
            with self.processor.context(self.message_cls, self) as ctx:
                self.consume(ctx)


    class TestIgnoresSigterm(QueueContract):
        adapter_cls = IgnoresSigterm


    class KeepsItsSignalHandlers(QueueAdapter):
        def run(self):
            super().run()
            signal.signal(signal.SIGTERM, self.shutdown_handler.signal_handler)


    class TestKeepsItsSignalHandlers(QueueContract):
        adapter_cls = KeepsItsSignalHandlers


    class SwallowsSecondSigterm(QueueAdapter):
        def deliver(self, ctx, message):
            try:
                ctx.handle(message)
            except KeyboardInterrupt:
                pass


    class TestSwallowsSecondSigterm(QueueContract):
        adapter_cls = SwallowsSecondSigterm


    class ReferenceDLQ(MutableMapping):
        """A correct DLQ: a dict behind a lock, with oldest()."""

        def __init__(self):
            self.entries = {}
            self.lock = threading.Lock()

        def __getitem__(self, key):
            return self.entries[key][:2]

        def __setitem__(self, key, value):
            with self.lock:
                self.entries.pop(key, None)
                self.entries[key] = (*value, self.now())

        def __delitem__(self, key):
            with self.lock:
                del self.entries[key]

        def __iter__(self):
            return iter(list(self.entries))

        def __len__(self):
            return len(self.entries)

        def oldest(self):
            for entry in list(self.entries.values()):
                return entry
            raise LookupError("empty")

        @staticmethod
        def now():
            import datetime

            return datetime.datetime.now(datetime.UTC)


    class TestReferenceDLQ(DLQContract):
        dlq_cls = ReferenceDLQ

        def make_dlq(self, tmp_path):
            return self.dlq_cls()


    class NoKeyError(ReferenceDLQ):
        def __getitem__(self, key):
            entry = self.entries.get(key)
            return None if entry is None else entry[:2]


    class TestNoKeyError(TestReferenceDLQ):
        dlq_cls = NoKeyError


    class LosesConcurrentWrites(ReferenceDLQ):
        def __setitem__(self, key, value):
            entries = dict(self.entries)
            time.sleep(0.0005)
            entries[key] = (*value, self.now())
            self.entries = entries


    class TestLosesConcurrentWrites(TestReferenceDLQ):
        dlq_cls = LosesConcurrentWrites


    class ForgetsTheFormat(ReferenceDLQ):
        def __getitem__(self, key):
            message, reason = self.entries[key][:2]
            return RawMessage(message.raw_data, message.message_id), reason


    class TestForgetsTheFormat(TestReferenceDLQ):
        dlq_cls = ForgetsTheFormat


    class OldestIsNewest(ReferenceDLQ):
        def oldest(self):
            for entry in reversed(list(self.entries.values())):
                return entry
            raise LookupError("empty")


    class TestOldestIsNewest(TestReferenceDLQ):
        dlq_cls = OldestIsNewest


    class CSVMessage(Message):
        """A correct format, though registered under nothing."""

        format_name = "csv"

        def rows(self):
            try:
                text = self.raw_data.decode("ascii")
            except UnicodeDecodeError as exc:
                raise MessageDecodeError(f"not ASCII: {exc}") from exc
            return [line.split(",") for line in text.splitlines()]


    class TestUnregisteredFormat(MessageFormatContract):
        message_cls = CSVMessage
        valid_payloads = [b"a,b\\n1,2"]
        invalid_payloads = [b"\\xff"]

        def decode(self, message):
            return message.rows()


    class WrongDecodeError(CSVMessage):
        format_name = "raw"

        def rows(self):
            try:
                return super().rows()
            except MessageDecodeError as exc:
                raise ValueError(str(exc)) from None


    class TestWrongDecodeError(TestUnregisteredFormat):
        message_cls = WrongDecodeError


    class RebuildDropsAttributes(CSVMessage):
        @classmethod
        def rebuild(cls, raw_data, message_id, *, attributes=None):
            return cls(raw_data, message_id)


    class TestRebuildDropsAttributes(TestUnregisteredFormat):
        message_cls = RebuildDropsAttributes
    '''
)

#: Each violation, the check that must catch it, and words its failure says.
VIOLATIONS = [
    ("TestDropsMessages", "test_published_message_reaches_its_handler", "reach"),
    ("TestReusesOneId", "test_each_message_gets_its_own_id", "message_id"),
    ("TestAckNeverReachesTheBus", "test_ack_reaches_the_transport", "as acked"),
    ("TestAcksOnNack", "test_nack_reaches_the_transport", "as nacked"),
    ("TestAcksWhatFailed", "test_failure_without_a_dlq_is_never_acked", "was acked"),
    ("TestAcksWhatFailed", "test_failed_dlq_write_is_never_acked", "was acked"),
    (
        "TestRoutesByItself",
        "test_unroutable_message_is_dead_lettered_then_acked",
        "stored in the DLQ",
    ),
    (
        "TestRoutesByItself",
        "test_handler_failure_is_dead_lettered_then_acked",
        "told to ack",
    ),
    (
        "TestSkipsProcessingHooks",
        "test_run_wraps_the_messages_in_the_processing_hooks_once",
        "before_processing",
    ),
    (
        "TestIgnoresStop",
        "test_run_wraps_the_messages_in_the_processing_hooks_once",
        "did not return",
    ),
    (
        "TestStopsMidMessage",
        "test_stop_lets_the_message_in_flight_finish_and_be_settled",
        "before the message in flight",
    ),
    (
        "TestIgnoresSigterm",
        "test_sigterm_stops_run_gracefully_and_restores_signal_handlers",
        "SIGTERM",
    ),
    (
        "TestKeepsItsSignalHandlers",
        "test_sigterm_stops_run_gracefully_and_restores_signal_handlers",
        "did not restore",
    ),
    (
        "TestSwallowsSecondSigterm",
        "test_second_sigterm_exits_at_once",
        "KeyboardInterrupt",
    ),
    ("TestNoKeyError", "test_a_new_dlq_is_empty", "KeyError"),
    ("TestLosesConcurrentWrites", "test_concurrent_writers_lose_nothing", "len"),
    (
        "TestForgetsTheFormat",
        "test_every_registered_message_format_round_trips",
        "came back as a RawMessage",
    ),
    (
        "TestOldestIsNewest",
        "test_oldest_is_the_first_stored_with_an_aware_utc_time",
        "old-",
    ),
    (
        "TestUnregisteredFormat",
        "test_the_format_name_loads_this_class",
        "does not load",
    ),
    (
        "TestWrongDecodeError",
        "test_invalid_payloads_raise_message_decode_error",
        "ValueError",
    ),
    (
        "TestWrongDecodeError",
        "test_a_decode_error_becomes_a_dlq_entry_and_is_acked",
        "could not decode",
    ),
    (
        "TestRebuildDropsAttributes",
        "test_rebuild_keeps_class_id_payload_and_attributes",
        "channel",
    ),
]

REFERENCES = ["TestReferenceAdapter", "TestReferenceDLQ"]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """Run the kit on the broken implementations; map test id to failure text.

    ``None`` means the check passed; a skipped check is left out.
    """
    folder = tmp_path_factory.mktemp("broken")
    (folder / "test_broken.py").write_text(BROKEN)
    report = folder / "report.xml"
    selected = sorted(
        {f"test_broken.py::{cls}::{check}" for cls, check, _ in VIOLATIONS}
    ) + [f"test_broken.py::{cls}" for cls in REFERENCES]

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={report}",
            *selected,
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return _read_report(report)


def _read_report(report: Path) -> dict[str, str | None]:
    results: dict[str, str | None] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}"
        if case.find("skipped") is not None:
            continue
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        results[test_id] = None if problem is None else problem.get("message", "")
    return results


@pytest.mark.parametrize(
    ("broken", "check", "says"),
    VIOLATIONS,
    ids=[f"{cls}-{check}" for cls, check, _ in VIOLATIONS],
)
def test_the_kit_fails_the_check_that_covers_the_violation(
    outcomes: dict[str, str | None], broken: str, check: str, says: str
) -> None:
    failure = outcomes.get(f"{broken}::{check}", "the check did not run")

    assert failure is not None, f"{broken} passed {check}"
    assert says in failure


@pytest.mark.parametrize("reference", REFERENCES)
def test_the_reference_implementations_pass_every_check(
    outcomes: dict[str, str | None], reference: str
) -> None:
    ran = {test_id: failure for test_id, failure in outcomes.items()}
    mine = {k: v for k, v in ran.items() if k.startswith(f"{reference}::")}

    assert len(mine) >= 8
    assert {k: v for k, v in mine.items() if v is not None} == {}
