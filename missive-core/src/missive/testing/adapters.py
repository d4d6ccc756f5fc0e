"""The adapter contract: what every transport adapter must do.

Subclass :class:`AdapterContract` in a test module, say how to build the
adapter and how to publish a payload to its transport, and pytest runs every
check against it::

    pytest_plugins = ["missive.testing"]

    class TestMyAdapter(AdapterContract):
        def make_adapter(self, processor):
            return MyAdapter(RawMessage, processor, url=...)

        def publish(self, adapter, payload):
            my_bus.send(payload)

        def transport_outcome(self, adapter, receipt):
            return "acked" if my_bus.was_acked(receipt) else None
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import pytest

from missive.adapters import Adapter, RunnableAdapter
from missive.contexts import HandlingContext
from missive.dlq.memory import MemoryDLQ
from missive.messages import Message, RawMessage
from missive.testing._harness import (
    ContractFailure,
    Decision,
    Helper,
    Recorder,
    Runner,
    SignalGuard,
    Watchdog,
    guarded_signals,
    hold,
    payload,
    wait_for,
)

#: What :meth:`AdapterContract.transport_outcome` returns.
TransportOutcome = Literal["acked", "nacked"] | None


class _Session:
    """One adapter under test, with its recording processor, maybe running."""

    def __init__(
        self, adapter: Adapter[Any], recorder: Recorder, runner: Runner | None
    ) -> None:
        self.adapter = adapter
        self.recorder = recorder
        self.runner = runner


class AdapterContract:
    """The contract of a transport adapter, as a suite of pytest checks.

    A subclass named ``Test...`` implements :meth:`make_adapter`,
    :meth:`publish` and, when its transport records acknowledgements,
    :meth:`transport_outcome`.  The checks then verify that:

    - a published payload reaches the handler as a message of
      :attr:`message_cls`, each with its own id;
    - the handler's ack and nack reach the adapter once, and the transport;
    - a handler that raises, or a message no handler matches, is stored in the
      processor's DLQ and then acked; without a DLQ, or when the DLQ cannot
      store it, the message is never acked;
    - for a :class:`~missive.adapters.RunnableAdapter`: ``run()`` runs the
      processing hooks once around the messages, ``stop()`` lets the
      message in flight finish and be settled, SIGTERM stops ``run()``
      gracefully and the previous signal handlers come back, and a second
      SIGTERM exits at once.

    A subclass that needs pytest fixtures (a server URL, a temporary
    directory) takes them in an ``autouse`` fixture of its own and keeps them
    on ``self``: pytest makes a new instance for every check.
    """

    #: The message class the adapter is built with.
    message_cls: ClassVar[type[Message]] = RawMessage
    #: Whether the transport itself records acks and nacks, as
    #: :meth:`transport_outcome` reports.  ``False`` for a transport with
    #: nothing to acknowledge (Redis Pub/Sub): only the adapter's ``ack`` and
    #: ``nack`` calls are checked then.
    settles_on_transport: ClassVar[bool] = True
    #: Whether a nacked message is delivered again by the transport.  When it
    #: is, the check expects a second delivery of the same payload; otherwise
    #: it expects :meth:`transport_outcome` to say ``"nacked"``.
    redelivers_nacked: ClassVar[bool] = False
    #: The longest any step may take, in seconds.
    timeout: ClassVar[float] = 10.0
    #: How long to watch for an ack that must not come, in seconds.
    quiet_period: ClassVar[float] = 0.5

    # --- what a plugin author provides -----------------------------------

    def make_adapter(self, processor: Any) -> Adapter[Any]:
        """Return a new adapter of :attr:`message_cls` for ``processor``.

        Called once per check, before the adapter runs.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement make_adapter(processor)"
        )

    def publish(self, adapter: Adapter[Any], payload: bytes) -> object:
        """Deliver ``payload`` to the adapter through its transport.

        Return at once, without waiting for the message to be handled (start
        a thread if the transport's send blocks until then).  What it returns
        is handed back to :meth:`transport_outcome`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement publish(adapter, payload)"
        )

    def transport_outcome(
        self, adapter: Adapter[Any], receipt: object
    ) -> TransportOutcome:
        """Say what the transport recorded for the message ``receipt`` names.

        ``"acked"``, ``"nacked"``, or ``None`` while it recorded nothing
        (yet).  The checks poll it until :attr:`timeout`.  Not called when
        :attr:`settles_on_transport` is false.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement transport_outcome(adapter, "
            "receipt), or set settles_on_transport = False"
        )

    def ready(self, adapter: Adapter[Any]) -> bool:
        """Whether a running adapter receives what is published from now on.

        Polled after the adapter started; the default says yes at once.  A
        transport that drops messages sent before a subscription is confirmed
        waits for it here.
        """
        return True

    def wake(self, adapter: Adapter[Any]) -> None:
        """Unblock a read that :meth:`~missive.RunnableAdapter.stop` cannot
        end, once a stop was requested.

        Most adapters need nothing; the stdin adapter, blocked in ``readline``
        until the next line, needs its input closed.
        """

    # --- checks: messages and settlement -----------------------------------

    def test_published_message_reaches_its_handler(self) -> None:
        sent = payload("reaches-handler", 1)

        with self._session() as session:
            self.publish(session.adapter, sent)
            self._wait_delivered(session, sent)

        [message] = session.recorder.delivered(sent)
        assert isinstance(message, self.message_cls), (
            f"the handler got a {type(message).__name__}, "
            f"not a {self.message_cls.__name__}"
        )
        assert message.raw_data == sent

    def test_each_message_gets_its_own_id(self) -> None:
        first, second = payload("own-id", 1), payload("own-id", 2)

        with self._session() as session:
            self.publish(session.adapter, first)
            self.publish(session.adapter, second)
            self._wait_delivered(session, first)
            self._wait_delivered(session, second)

        [one] = session.recorder.delivered(first)
        [two] = session.recorder.delivered(second)
        assert isinstance(one.message_id, bytes)
        assert one.message_id != two.message_id

    def test_ack_reaches_the_transport(self) -> None:
        sent = payload("ack", 1)

        with self._session() as session:
            receipt = self.publish(session.adapter, sent)
            self._wait_delivered(session, sent)
            self._wait_settled(session, receipt, sent, "acked")

        assert session.recorder.acked_payloads() == [sent]
        assert session.recorder.nacked_payloads() == []

    def test_nack_reaches_the_transport(self) -> None:
        sent = payload("nack", 1)

        with self._session(decide=_nack_first_delivery()) as session:
            receipt = self.publish(session.adapter, sent)
            self._wait_delivered(session, sent)
            if self.redelivers_nacked:
                wait_for(
                    lambda: len(session.recorder.delivered(sent)) >= 2,
                    timeout=self.timeout,
                    what="a nacked message should be delivered again",
                )
                self._wait_settled(session, receipt, sent, "acked")
            else:
                self._wait_settled(session, receipt, sent, "nacked")

        assert session.recorder.nacked_payloads() == [sent]
        expected_acks = [sent] if self.redelivers_nacked else []
        assert session.recorder.acked_payloads() == expected_acks

    # --- checks: the DLQ policy ---------------------------------------------

    def test_handler_failure_is_dead_lettered_then_acked(self) -> None:
        sent = payload("handler-fails", 1)
        dlq: MemoryDLQ[Message] = MemoryDLQ()

        with self._session(decide=_raise, dlq=dlq) as session:
            receipt = self.publish(session.adapter, sent)
            self._wait_settled(session, receipt, sent, "acked")

        stored, reason = _only_dead_letter(dlq)
        assert stored.raw_data == sent
        assert reason == "handler failed on purpose"
        assert session.recorder.nacked_payloads() == []

    def test_unroutable_message_is_dead_lettered_then_acked(self) -> None:
        sent = payload("unroutable", 1, unroutable=True)
        dlq: MemoryDLQ[Message] = MemoryDLQ()

        with self._session(dlq=dlq) as session:
            receipt = self.publish(session.adapter, sent)
            self._wait_settled(session, receipt, sent, "acked")

        stored, reason = _only_dead_letter(dlq)
        assert stored.raw_data == sent
        assert reason == "no matching handlers"
        assert session.recorder.delivered(sent) == []

    def test_failure_without_a_dlq_is_never_acked(self) -> None:
        sent = payload("no-dlq", 1)

        with self._session(decide=_raise, run_may_fail=True) as session:
            receipt = self.publish(session.adapter, sent)
            self._wait_delivered(session, sent)
            self._assert_never_acked(session, receipt, sent)

    def test_failed_dlq_write_is_never_acked(self) -> None:
        sent = payload("dlq-fails", 1)

        with self._session(
            decide=_raise, dlq=_UnwritableDLQ(), run_may_fail=True
        ) as session:
            receipt = self.publish(session.adapter, sent)
            self._wait_delivered(session, sent)
            self._assert_never_acked(session, receipt, sent)

    # --- checks: run, stop and signals --------------------------------------

    def test_run_wraps_the_messages_in_the_processing_hooks_once(self) -> None:
        first, second = payload("hooks", 1), payload("hooks", 2)

        with self._session(runnable_only=True) as session:
            self.publish(session.adapter, first)
            self._wait_delivered(session, first)
            self.publish(session.adapter, second)
            self._wait_delivered(session, second)

        assert session.recorder.events == [
            "before_processing",
            *["handler started", "handler returned"] * 2,
            "after_processing",
        ]

    def test_stop_lets_the_message_in_flight_finish_and_be_settled(self) -> None:
        sent = payload("stop-in-flight", 1)
        entered, release = threading.Event(), threading.Event()

        def block_then_ack(message: Message, ctx: HandlingContext[Any]) -> None:
            entered.set()
            hold(release, self.timeout)
            ctx.ack()

        with self._session(decide=block_then_ack, runnable_only=True) as session:
            receipt = self.publish(session.adapter, sent)
            assert entered.wait(self.timeout), "the message never reached its handler"
            assert isinstance(session.adapter, RunnableAdapter)
            session.adapter.stop()
            assert session.runner is not None
            # Long enough for a polling loop to notice the stop request.
            returned_early = session.runner.returned.wait(1.0)
            release.set()
            self._wait_settled(session, receipt, sent, "acked")

        assert not returned_early, (
            "run() returned, and the after_processing hooks ran, before the "
            "message in flight was finished"
        )
        assert session.recorder.acked_payloads() == [sent]
        assert session.recorder.events[-2:] == ["handler returned", "after_processing"]

    def test_sigterm_stops_run_gracefully_and_restores_signal_handlers(
        self,
    ) -> None:
        sent = payload("sigterm", 1)
        recorder = Recorder()
        adapter = self._runnable(recorder)

        def transport_side() -> None:
            wait_for(lambda: self.ready(adapter), timeout=self.timeout, what="ready")
            self.publish(adapter, sent)
            self._wait_acked(recorder, sent)
            os.kill(os.getpid(), signal.SIGTERM)

        with guarded_signals() as guard:
            error = self._run_in_main_thread(adapter, transport_side, guard)
            handler_after = signal.getsignal(signal.SIGTERM)

            assert error is None, f"run() raised {error!r} after one SIGTERM"
            assert guard.unhandled == [], "run() did not install a SIGTERM handler"
            assert handler_after == guard.handler, (
                "run() did not restore the SIGTERM handler it replaced"
            )
        assert recorder.events == [
            "before_processing",
            "handler started",
            "handler returned",
            "after_processing",
        ]

    def test_second_sigterm_exits_at_once(self) -> None:
        sent = payload("second-sigterm", 1)
        entered, release = threading.Event(), threading.Event()

        def block(message: Message, ctx: HandlingContext[Any]) -> None:
            entered.set()
            hold(release, self.timeout)
            ctx.ack()

        recorder = Recorder(block)
        adapter = self._runnable(recorder)

        def transport_side() -> None:
            wait_for(lambda: self.ready(adapter), timeout=self.timeout, what="ready")
            self.publish(adapter, sent)
            assert entered.wait(self.timeout), "the message never reached its handler"
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGTERM)

        with guarded_signals() as guard:
            try:
                error = self._run_in_main_thread(adapter, transport_side, guard)
            finally:
                release.set()
            handler_after = signal.getsignal(signal.SIGTERM)

            assert isinstance(error, KeyboardInterrupt), (
                f"run() should raise KeyboardInterrupt at a second SIGTERM, "
                f"not {error!r}"
            )
            assert guard.unhandled == [], "run() did not install a SIGTERM handler"
            assert handler_after == guard.handler

    # --- the machinery ------------------------------------------------------

    @contextmanager
    def _session(
        self,
        *,
        decide: Decision | None = None,
        dlq: MutableMapping[bytes, tuple[Message, str]] | None = None,
        run_may_fail: bool = False,
        runnable_only: bool = False,
    ) -> Iterator[_Session]:
        """Build the adapter, run it in a thread, and stop it on the way out."""
        recorder = Recorder(decide)
        if dlq is not None:
            recorder.processor.set_dlq(dlq)
        adapter = self.make_adapter(recorder.processor)
        if runnable_only and not isinstance(adapter, RunnableAdapter):
            pytest.skip(f"{type(adapter).__name__} is not a RunnableAdapter")
        recorder.watch(adapter)

        runner = None
        if isinstance(adapter, RunnableAdapter):
            runner = Runner(adapter)
            runner.start()
        session = _Session(adapter, recorder, runner)
        try:
            wait_for(
                lambda: self.ready(adapter) or _ended(runner),
                timeout=self.timeout,
                what=f"{type(adapter).__name__} should be ready",
            )
            yield session
        finally:
            if runner is not None:
                self._stop(runner)
        if runner is not None and runner.error is not None and not run_may_fail:
            raise AssertionError(f"run() raised {runner.error!r}") from runner.error

    def _stop(self, runner: Runner) -> None:
        runner.adapter.stop()
        self.wake(runner.adapter)
        if not runner.returned.wait(self.timeout):
            raise AssertionError(
                f"run() did not return within {self.timeout} s of stop()"
            )

    def _runnable(self, recorder: Recorder) -> RunnableAdapter[Any]:
        adapter = self.make_adapter(recorder.processor)
        if not isinstance(adapter, RunnableAdapter):
            pytest.skip(f"{type(adapter).__name__} is not a RunnableAdapter")
        if threading.current_thread() is not threading.main_thread():
            pytest.skip("signals reach run() only on the main thread")
        recorder.watch(adapter)
        return adapter

    def _run_in_main_thread(
        self,
        adapter: RunnableAdapter[Any],
        transport_side: Callable[[], None],
        guard: SignalGuard,
    ) -> BaseException | None:
        """Run ``adapter`` here while ``transport_side`` runs in a thread.

        Returns what ``run()`` raised, or ``None``.
        """
        helper = Helper(transport_side)
        helper.start()
        error: BaseException | None = None
        try:
            with guard.deadline(self.timeout * 2):
                adapter.run()
        except Watchdog:
            adapter.stop()
            self.wake(adapter)
            raise AssertionError(
                f"run() did not return within {self.timeout * 2} s of SIGTERM"
            ) from None
        except BaseException as exc:
            error = exc
        helper.join(self.timeout)
        return error

    def _wait_delivered(self, session: _Session, sent: bytes) -> None:
        wait_for(
            lambda: session.recorder.delivered(sent) or _ended(session.runner),
            timeout=self.timeout,
            what="the published message should reach its handler",
        )
        assert session.recorder.delivered(sent), (
            f"run() ended before the message arrived: {_error_of(session.runner)}"
        )

    def _wait_acked(self, recorder: Recorder, sent: bytes) -> None:
        wait_for(
            lambda: sent in recorder.acked_payloads(),
            timeout=self.timeout,
            what="the adapter should be told to ack the message",
        )

    def _wait_settled(
        self,
        session: _Session,
        receipt: object,
        sent: bytes,
        expected: Literal["acked", "nacked"],
    ) -> None:
        """Wait for the adapter's call, then for the transport's record."""
        calls = (
            session.recorder.acked_payloads
            if expected == "acked"
            else session.recorder.nacked_payloads
        )
        wait_for(
            lambda: sent in calls(),
            timeout=self.timeout,
            what=f"the adapter should be told to {expected[:-2]} the message",
        )
        if not self.settles_on_transport:
            return
        seen: list[TransportOutcome] = []

        def recorded() -> bool:
            seen.append(self.transport_outcome(session.adapter, receipt))
            return seen[-1] == expected

        wait_for(
            recorded,
            timeout=self.timeout,
            what=f"the transport should record the message as {expected} "
            f"(last seen: {seen[-1] if seen else None!r})",
        )

    def _assert_never_acked(
        self, session: _Session, receipt: object, sent: bytes
    ) -> None:
        time.sleep(self.quiet_period)
        assert sent not in session.recorder.acked_payloads(), (
            "a message that failed without being stored was acked"
        )
        if self.settles_on_transport:
            outcome = self.transport_outcome(session.adapter, receipt)
            assert outcome != "acked", (
                "the transport recorded an ack for a message that failed "
                "without being stored"
            )


class _UnwritableDLQ(MutableMapping[bytes, tuple[Message, str]]):
    """A DLQ whose every write fails, as a full disk would make it."""

    def __getitem__(self, key: bytes) -> tuple[Message, str]:
        raise KeyError(key)

    def __setitem__(self, key: bytes, value: tuple[Message, str]) -> None:
        raise OSError("the DLQ cannot be written (on purpose)")

    def __delitem__(self, key: bytes) -> None:
        raise KeyError(key)

    def __iter__(self) -> Iterator[bytes]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _raise(message: Message, ctx: HandlingContext[Any]) -> None:
    raise ContractFailure("handler failed on purpose")


def _nack_first_delivery() -> Decision:
    """Nack each payload's first delivery, ack the ones after it."""
    seen: set[bytes] = set()

    def decide(message: Message, ctx: HandlingContext[Any]) -> None:
        if message.raw_data in seen:
            ctx.ack()
        else:
            seen.add(message.raw_data)
            ctx.nack()

    return decide


def _only_dead_letter(dlq: MemoryDLQ[Message]) -> tuple[Message, str]:
    entries = list(dlq.values())
    assert len(entries) == 1, (
        f"the message should be stored in the DLQ, which holds {len(entries)} entries"
    )
    return entries[0]


def _ended(runner: Runner | None) -> bool:
    return runner is not None and runner.returned.is_set()


def _error_of(runner: Runner | None) -> str:
    if runner is None or runner.error is None:
        return "it returned normally"
    return f"it raised {runner.error!r}"
