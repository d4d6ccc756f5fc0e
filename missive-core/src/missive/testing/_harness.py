"""What the contract suites share: waiting, a recording processor, running.

Nothing here is public: plugin authors use the contract classes.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from missive.adapters import Adapter, RunnableAdapter
from missive.contexts import HandlingContext, ProcessingContext
from missive.messages import Message
from missive.processor import Processor

#: How often waiting loops look again, in seconds.
POLL_SECONDS = 0.01

#: Decides what the recording processor's handler does with a message.
Decision = Callable[[Message, HandlingContext[Any]], None]


class ContractFailure(Exception):
    """Raised on purpose by a handler that the contract makes fail."""


class Watchdog(BaseException):
    """Raised in the main thread when a blocking call overran its time.

    A ``BaseException``, so that an adapter catching ``Exception`` around its
    loop does not swallow it.
    """


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(POLL_SECONDS)


def hold(event: threading.Event, timeout: float) -> bool:
    """Wait for ``event`` in short steps, so that signals reach a main thread.

    One long wait on a lock is not interrupted when a signal arrives: the
    Python-level handler would run only once the wait is over.
    """
    deadline = time.monotonic() + timeout
    while not event.wait(0.05):
        if time.monotonic() > deadline:
            return False
    return True


def payload(test: str, number: int, **extra: Any) -> bytes:
    """A one-line JSON object naming the check, valid for any message format."""
    return json.dumps({"check": test, "n": number, **extra}).encode()


def routable(message: Message) -> bool:
    """The recording processor's matcher: everything but ``unroutable`` payloads."""
    return b'"unroutable": true' not in message.raw_data


class Recorder:
    """A processor that records deliveries, hook runs, acks and nacks.

    ``decide`` settles each delivery; the default acks.  Spies on the
    adapter's ``ack`` and ``nack`` are installed by :meth:`watch`.
    """

    def __init__(self, decide: Decision | None = None) -> None:
        self.processor: Processor[Any] = Processor()
        self.decide = decide or _ack
        self.lock = threading.Lock()
        self.deliveries: list[Message] = []
        self.events: list[str] = []
        self.acked: list[Message] = []
        self.nacked: list[Message] = []
        self.processor.before_processing(self._started)
        self.processor.after_processing(self._stopped)
        self.processor.handle_for(routable)(self._handle)

    def watch(self, adapter: Adapter[Any]) -> None:
        """Record every ``ack`` and ``nack`` the processor sends ``adapter``."""
        original_ack, original_nack = adapter.ack, adapter.nack

        def ack(message: Message) -> None:
            with self.lock:
                self.acked.append(message)
            original_ack(message)

        def nack(message: Message) -> None:
            with self.lock:
                self.nacked.append(message)
            original_nack(message)

        # Instance attributes win over the methods the contexts look up.
        setattr(adapter, "ack", ack)  # noqa: B010
        setattr(adapter, "nack", nack)  # noqa: B010

    def delivered(self, raw_data: bytes) -> list[Message]:
        with self.lock:
            return [m for m in self.deliveries if m.raw_data == raw_data]

    def acked_payloads(self) -> list[bytes]:
        with self.lock:
            return [m.raw_data for m in self.acked]

    def nacked_payloads(self) -> list[bytes]:
        with self.lock:
            return [m.raw_data for m in self.nacked]

    def _handle(self, message: Message, ctx: HandlingContext[Any]) -> None:
        with self.lock:
            self.deliveries.append(message)
            self.events.append("handler started")
        try:
            self.decide(message, ctx)
        finally:
            with self.lock:
                self.events.append("handler returned")

    def _started(self, ctx: ProcessingContext[Any]) -> None:
        with self.lock:
            self.events.append("before_processing")

    def _stopped(self, ctx: ProcessingContext[Any]) -> None:
        with self.lock:
            self.events.append("after_processing")


def _ack(message: Message, ctx: HandlingContext[Any]) -> None:
    ctx.ack()


class Runner:
    """Runs a :class:`RunnableAdapter` in a daemon thread and records the end."""

    def __init__(self, adapter: RunnableAdapter[Any]) -> None:
        self.adapter = adapter
        self.error: BaseException | None = None
        self.returned = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"run-{type(adapter).__name__}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.adapter.run()
        except BaseException as exc:
            self.error = exc
        finally:
            self.returned.set()


class Helper:
    """A thread doing the transport's side while ``run()`` holds the main thread.

    Its exception, if any, is re-raised by :meth:`join`.
    """

    def __init__(self, target: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self._target = target
        self.thread = threading.Thread(target=self._run, name="helper", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self._target()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        assert not self.thread.is_alive(), f"the helper thread overran {timeout} s"


class SignalGuard:
    """Catches SIGTERM that no adapter handled, and bounds blocking calls.

    While active, SIGTERM reaching the guard's own handler is counted instead
    of killing the test process, and :meth:`deadline` raises
    :class:`Watchdog` in the main thread once its time is up.
    """

    def __init__(self) -> None:
        self.unhandled: list[int] = []

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.unhandled.append(signum)

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        def expire(signum: int, frame: FrameType | None) -> None:
            raise Watchdog(f"still blocked after {seconds} s")

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


@contextmanager
def guarded_signals() -> Iterator[SignalGuard]:
    """Install a :class:`SignalGuard` for SIGTERM; restore what was there."""
    guard = SignalGuard()
    previous = signal.signal(signal.SIGTERM, guard.handler)
    try:
        yield guard
    finally:
        signal.signal(signal.SIGTERM, previous)
