"""Processing and handling contexts: where a message's outcome is decided.

A :class:`ProcessingContext` lives for one run of an adapter and is where a
message enters (:meth:`ProcessingContext.handle`).  Each message gets a
:class:`HandlingContext` that its handler acks or nacks through.

The handler's decision is recorded, not sent at once: the adapter is told to
ack or nack only after the handler and every ``after_handling`` hook returned.
If anything raises first, the dead letter policy applies instead, so a message
is acked only after it was handled or safely stored.
"""

from __future__ import annotations

from missive._logger import get_logger
from missive._typing import Generic, TypeVar
from missive.errors import (
    DeadLetterError,
    MessageAlreadySettled,
    MessageDecodeError,
    RoutingError,
)
from missive.state import State

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from types import TracebackType
    from typing import Any, ClassVar

    from missive.adapters import Adapter
    from missive.messages import Message
    from missive.processor import Processor, _Plan

M = TypeVar("M", bound="Message")

logger = get_logger(__name__)


class Outcome:
    """What became of a message after :meth:`ProcessingContext.handle`.

    One of four constants, compared by identity: ``Outcome.ACKED``,
    ``Outcome.NACKED``, ``Outcome.DEAD_LETTERED`` (stored in the DLQ, then
    acked) and ``Outcome.FAILED`` (processing failed and no DLQ was set:
    neither acked nor nacked).  :attr:`value` is the outcome in words
    (``"dead-lettered"``).  A plain class rather than an :class:`enum.Enum`,
    whose import alone would exceed the start-up budget of ``import
    missive``.
    """

    __slots__ = ("name", "value")

    ACKED: ClassVar[Outcome]
    NACKED: ClassVar[Outcome]
    DEAD_LETTERED: ClassVar[Outcome]
    FAILED: ClassVar[Outcome]

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"Outcome.{self.name}"

    def __reduce__(self) -> str:
        # Pickled and copied by name, so that identity comparisons hold.
        return f"Outcome.{self.name}"


Outcome.ACKED = Outcome("ACKED", "acked")
Outcome.NACKED = Outcome("NACKED", "nacked")
Outcome.DEAD_LETTERED = Outcome("DEAD_LETTERED", "dead-lettered")
Outcome.FAILED = Outcome("FAILED", "failed")

#: ``logging.DEBUG``, without importing logging to read it.
_DEBUG = 10

# Module constants: cheaper to reach on the hot path than enum attributes.
_ACKED = Outcome.ACKED
_NACKED = Outcome.NACKED


class HandlingContext(Generic[M]):
    """The context of one message: its state, and how its handler settles it.

    A handler calls exactly one of :meth:`ack` or :meth:`nack`.  Calling
    either a second time raises :class:`~missive.errors.MessageAlreadySettled`.
    """

    __slots__ = ("_state", "decision", "message", "processing_ctx")

    def __init__(self, message: M, processing_ctx: ProcessingContext[M]) -> None:
        self.message = message
        self.processing_ctx = processing_ctx
        #: ``Outcome.ACKED`` or ``Outcome.NACKED`` once the handler decided.
        self.decision: Outcome | None = None
        self._state: State | None = None

    @property
    def state(self) -> State:
        """Per-message state, shared by the hooks and the handler."""
        if self._state is None:
            self._state = State()
        return self._state

    def ack(self) -> None:
        """Acknowledge the message: it was processed and must not come back."""
        if self.decision is not None:
            self._already_settled()
        self.decision = _ACKED

    def nack(self) -> None:
        """Reject the message so that the transport may deliver it again."""
        if self.decision is not None:
            self._already_settled()
        self.decision = _NACKED

    def _already_settled(self) -> None:
        raise MessageAlreadySettled(
            f"message {self.message.message_id!r} was already "
            f"{self.decision.value if self.decision else 'settled'}"
        )


class ProcessingContext(Generic[M]):
    """The context of one adapter run: shared state and the entry point.

    Adapters call :meth:`handle` for each message they receive.  It is safe to
    call from several threads at once: everything about one message lives in
    its own :class:`HandlingContext`.

    :param message_cls: the message class the adapter builds.
    :param adapter: the adapter that acks and nacks on the transport.
    :param processor: the processor whose handlers and hooks apply.
    """

    def __init__(
        self,
        message_cls: type[M],
        adapter: Adapter[M],
        processor: Processor[M],
        *,
        observer: Callable[..., Any] | None = None,
    ) -> None:
        self.message_cls = message_cls
        self.adapter = adapter
        self.processor = processor
        self.state = State()
        self._observer = observer
        # One level check per run, not one per message.
        self._debug = logger.isEnabledFor(_DEBUG)
        self._quiet = observer is None and not self._debug

    def ack(self, message: M) -> None:
        """Tell the adapter to acknowledge ``message`` now."""
        self.adapter.ack(message)

    def nack(self, message: M) -> None:
        """Tell the adapter to reject ``message`` now."""
        self.adapter.nack(message)

    def handle(self, message: M) -> Outcome:
        """Route ``message`` to its handler and settle it with the adapter.

        :returns: what became of the message.
        :raises RoutingError: routing failed and no DLQ is set.
        :raises DeadLetterError: storing the message in the DLQ failed.
        :raises Exception: the handler's or a hook's exception, when no DLQ is
            set.  In every raising case the message was neither acked nor
            nacked.
        """
        handling = HandlingContext(message, self)
        plan = self.processor._plan
        if plan.hooked:
            error = self._run_hooked(handling, plan)
            if error is not None:
                return self._fail(handling, error)
        else:
            try:
                handler = plan.router.select(message)
                handler(message, handling)
            except Exception as exc:
                return self._fail(handling, exc)
            # Fast path for the common case: acked, nobody watching.
            if handling.decision is _ACKED and self._quiet:
                self.adapter.ack(message)
                return _ACKED
        return self._settle(handling)

    def handling_context(
        self, message: M
    ) -> AbstractContextManager[HandlingContext[M]]:
        """Run the handling hooks around a block, then settle the message.

        A lower-level alternative to :meth:`handle` for adapters that route by
        themselves: ``with ctx.handling_context(message) as handling: ...``.
        Exceptions raised in the block or by a hook propagate, and the message
        is then not settled; no dead letter policy is applied.
        """
        return _HandlingBlock(self, HandlingContext(message, self))

    def _run_hooked(
        self, handling: HandlingContext[M], plan: _Plan
    ) -> Exception | None:
        """Run hooks, routing and handler; return the first exception raised.

        ``after_handling`` hooks run whenever every ``before_handling`` hook
        succeeded, even if routing or the handler raised.
        """
        message = handling.message
        try:
            for hook in plan.before:
                hook(self, handling)
        except Exception as exc:
            return exc

        error: Exception | None = None
        try:
            handler = plan.router.select(message)
            handler(message, handling)
        except Exception as exc:
            error = exc

        for hook in plan.after:
            try:
                hook(self, handling)
            except Exception as exc:
                if error is None:
                    error = exc
                else:
                    logger.exception(
                        "after_handling hook %r also raised for message %r",
                        hook,
                        message.message_id,
                    )
        return error

    def _settle(self, handling: HandlingContext[M]) -> Outcome:
        """Pass the handler's decision on to the adapter."""
        message = handling.message
        outcome = handling.decision
        if outcome is Outcome.ACKED:
            self.adapter.ack(message)
        elif outcome is Outcome.NACKED:
            self.adapter.nack(message)
        else:
            # The "non-ack anti-pattern": nack, so that a transport that can
            # redeliver does, and its retry limit or DLQ catches a loop.
            logger.warning(
                "handler returned without acking or nacking message %r; nacking it",
                message.message_id,
            )
            outcome = Outcome.NACKED
            self.adapter.nack(message)

        if self._debug:
            logger.debug("message %r %s", message.message_id, outcome.value)
        if self._observer is not None:
            self._observer(
                processing_ctx=self, message=message, outcome=outcome, reason=None
            )
        return outcome

    def _fail(self, handling: HandlingContext[M], error: Exception) -> Outcome:
        """Apply the dead letter policy to a message whose processing raised."""
        message = handling.message
        reason = failure_reason(error)
        dlq = self.processor.dlq
        if dlq is None:
            if self._observer is not None:
                self._observer(
                    processing_ctx=self,
                    message=message,
                    outcome=Outcome.FAILED,
                    reason=reason,
                )
            raise error

        return self.dead_letter(message, reason, error=error)

    def dead_letter(
        self, message: M, reason: str, *, error: BaseException | None = None
    ) -> Outcome:
        """Store ``message`` in the processor's DLQ under ``reason``, then ack it.

        Processing calls this for every message it cannot handle; adapters
        call it for messages they refuse before any handler runs (delivered
        too often, a payload field missing), so that the same policy and the
        same outcome observers apply.

        :param error: the exception behind the failure, if any; a DLQ backend
            that stores details receives its type and traceback.
        :returns: ``Outcome.DEAD_LETTERED``.
        :raises DeadLetterError: no DLQ is set, or storing failed; the message
            was then neither acked nor nacked.
        """
        if self.processor.dlq is None:
            raise DeadLetterError(
                f"no DLQ is set to store message {message.message_id!r} ({reason})"
            )

        logger.warning(
            "dead-lettering message %r: %s",
            message.message_id,
            reason,
            exc_info=error is not None
            and not isinstance(error, (RoutingError, MessageDecodeError)),
        )
        try:
            self.processor._store_dead_letter(message, reason, error, self.adapter)
        except Exception as exc:
            logger.exception(
                "could not store message %r in the DLQ; it was not acked",
                message.message_id,
            )
            raise DeadLetterError(
                f"could not store message {message.message_id!r} in the DLQ: {exc}"
            ) from exc

        self.adapter.ack(message)
        if self._observer is not None:
            self._observer(
                processing_ctx=self,
                message=message,
                outcome=Outcome.DEAD_LETTERED,
                reason=reason,
            )
        return Outcome.DEAD_LETTERED


class _HandlingBlock(Generic[M]):
    """The context manager behind :meth:`ProcessingContext.handling_context`."""

    __slots__ = ("_handling", "_plan", "_processing_ctx")

    def __init__(
        self, processing_ctx: ProcessingContext[M], handling: HandlingContext[M]
    ) -> None:
        self._processing_ctx = processing_ctx
        self._handling = handling
        self._plan = processing_ctx.processor._plan

    def __enter__(self) -> HandlingContext[M]:
        for hook in self._plan.before:
            hook(self._processing_ctx, self._handling)
        return self._handling

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for hook in self._plan.after:
            hook(self._processing_ctx, self._handling)
        if exc_type is None:
            self._processing_ctx._settle(self._handling)


def failure_reason(error: BaseException) -> str:
    """Return the DLQ reason for an exception raised while processing."""
    if isinstance(error, RoutingError):
        return error.reason
    if isinstance(error, MessageDecodeError):
        return f"could not decode message: {error}"
    return str(error) or type(error).__name__
