"""The processor: handlers, hooks and the dead letter queue of an application."""

from __future__ import annotations

import os

from missive._typing import Generic, TypeVar
from missive.contexts import ProcessingContext
from missive.errors import HandlerAlreadyRegistered
from missive.routing import Router

M = TypeVar("M", bound="Message")
H = TypeVar("H", bound="Callable[..., Any]")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping
    from contextlib import AbstractContextManager
    from types import TracebackType
    from typing import Any, TypeAlias

    from missive.adapters import Adapter
    from missive.contexts import HandlingContext
    from missive.messages import Message
    from missive.routing import Handler, Matcher
    from missive.testclient import TestAdapter

    ProcessingHook: TypeAlias = Callable[[ProcessingContext[M]], None]
    HandlingHook: TypeAlias = Callable[[ProcessingContext[M], HandlingContext[M]], None]


#: Longest traceback, in characters, handed to a DLQ that stores details.
TRACEBACK_LIMIT = 8192


class _Plan:
    """Everything ``handle`` needs per message, rebuilt on each registration."""

    __slots__ = ("after", "before", "hooked", "router")

    def __init__(
        self,
        router: Router[Any],
        before: tuple[Callable[..., None], ...] = (),
        after: tuple[Callable[..., None], ...] = (),
    ) -> None:
        self.router = router
        self.before = before
        self.after = after
        self.hooked = bool(before or after)


class ProcessingRun(Generic[M]):
    """The processing hooks around one adapter run (``with processor.context``).

    ``after_processing`` hooks run only in the process that entered: a child
    forked meanwhile (a pre-forking WSGI server) that leaves the run does not
    run its parent's hooks.
    """

    __slots__ = ("_adapter", "_ctx", "_message_cls", "_owner", "_processor")

    def __init__(
        self, processor: Processor[M], message_cls: type[M], adapter: Adapter[M]
    ) -> None:
        self._processor = processor
        self._message_cls = message_cls
        self._adapter = adapter
        self._ctx: ProcessingContext[M] | None = None
        self._owner = 0

    def __enter__(self) -> ProcessingContext[M]:
        from missive import plugins

        ctx = ProcessingContext(
            self._message_cls,
            self._adapter,
            self._processor,
            observer=plugins.outcome_observer(),
        )
        self._owner = os.getpid()
        for hook in self._processor._before_processing:
            hook(ctx)
        self._ctx = ctx
        return ctx

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is None or os.getpid() != self._owner:
            return
        for hook in self._processor._after_processing:
            hook(ctx)


class Processor(Generic[M]):
    """Routes each message to exactly one handler and applies the DLQ policy.

    Register handlers with :meth:`handle_for` and hooks with the four hook
    decorators, then give the processor to an adapter (or to
    :meth:`test_client`).  Registration is meant to happen at import time;
    a registration made while an adapter runs applies from the next message.

    Type it to have handlers checked against a message class::

        json_processor: Processor[JSONMessage] = Processor()
    """

    def __init__(self) -> None:
        self.dlq: MutableMapping[bytes, tuple[M, str]] | None = None
        self._handlers: dict[Matcher[M], Handler[M]] = {}
        self._before_processing: list[ProcessingHook[M]] = []
        self._after_processing: list[ProcessingHook[M]] = []
        self._before_handling: list[HandlingHook[M]] = []
        self._after_handling: list[HandlingHook[M]] = []
        self._store_details: Callable[..., None] | None = None
        self._plan = _Plan(Router())

    def handle_for(self, matcher: Matcher[M]) -> Callable[[H], H]:
        """Register the decorated function as the handler for ``matcher``.

        The handler is called as ``handler(message, handling_ctx)`` for every
        message that ``matcher`` accepts and no other matcher does.

        :raises HandlerAlreadyRegistered: ``matcher`` already has a handler.
        """

        def register(handler: H) -> H:
            if matcher in self._handlers:
                raise HandlerAlreadyRegistered(
                    f"matcher {matcher!r} already has handler "
                    f"{self._handlers[matcher]!r}"
                )
            self._handlers[matcher] = handler
            self._replan()
            return handler

        return register

    def before_processing(self, hook: ProcessingHook[M]) -> ProcessingHook[M]:
        """Register ``hook(processing_ctx)`` to run when an adapter starts.

        An exception it raises propagates: the adapter does not start.
        """
        self._before_processing.append(hook)
        return hook

    def after_processing(self, hook: ProcessingHook[M]) -> ProcessingHook[M]:
        """Register ``hook(processing_ctx)`` to run when an adapter stops."""
        self._after_processing.append(hook)
        return hook

    def before_handling(self, hook: HandlingHook[M]) -> HandlingHook[M]:
        """Register ``hook(processing_ctx, handling_ctx)`` to run before each
        message is routed.

        An exception it raises is handled like a handler's: the message is
        dead-lettered (or the exception propagates when no DLQ is set).
        """
        self._before_handling.append(hook)
        self._replan()
        return hook

    def after_handling(self, hook: HandlingHook[M]) -> HandlingHook[M]:
        """Register ``hook(processing_ctx, handling_ctx)`` to run after each
        message, even when its handler raised.

        An exception it raises is handled like a handler's.
        """
        self._after_handling.append(hook)
        self._replan()
        return hook

    def set_dlq(self, dlq: MutableMapping[bytes, tuple[M, str]] | None) -> None:
        """Store messages that cannot be processed in ``dlq``, keyed by id.

        Any mutable mapping works, a ``dict`` included.  A backend that also
        has ``add_dead_letter(message, reason, details)`` receives the
        exception type, a bounded traceback (both ``None`` when the message
        was refused without an exception) and the adapter's name as well.
        Pass ``None`` to stop dead-lettering.
        """
        self.dlq = dlq
        self._store_details = getattr(dlq, "add_dead_letter", None)

    def context(
        self, message_cls: type[M], adapter: Adapter[M]
    ) -> AbstractContextManager[ProcessingContext[M]]:
        """Return the processing context of one run, as a context manager.

        Entering it runs the ``before_processing`` hooks and gives the
        :class:`ProcessingContext`; leaving it runs the ``after_processing``
        hooks, also when the block raised.
        """
        return ProcessingRun(self, message_cls, adapter)

    def test_client(self) -> TestAdapter[M]:
        """Return an in-memory adapter for tests.

        Use it in a ``with`` block, or assign it and call ``send``: the
        processing context then starts at the first message and ends at
        ``close()``.
        """
        from missive.testclient import TestAdapter

        return TestAdapter(self)

    def _replan(self) -> None:
        before = tuple(self._before_handling)
        after = tuple(self._after_handling)
        self._plan = _Plan(Router(self._handlers.items()), before, after)

    def _store_dead_letter(
        self,
        message: M,
        reason: str,
        error: BaseException | None,
        adapter: Adapter[M],
    ) -> None:
        """Write one dead letter; raises whatever the DLQ raised."""
        assert self.dlq is not None
        if self._store_details is None:
            self.dlq[message.message_id] = (message, reason)
            return

        error_type = traceback_text = None
        if error is not None:
            error_type = f"{type(error).__module__}.{type(error).__qualname__}"
            import traceback

            traceback_text = "".join(traceback.format_exception(error))[
                -TRACEBACK_LIMIT:
            ]
        self._store_details(
            message,
            reason,
            {
                "error_type": error_type,
                "traceback": traceback_text,
                "adapter": type(adapter).__name__,
            },
        )
