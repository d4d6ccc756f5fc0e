"""The test client: run a processor in memory, without a message bus."""

from __future__ import annotations

from missive._typing import Generic, TypeVar
from missive.adapters import Adapter
from missive.messages import Message

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from types import TracebackType
    from typing import Any

    from missive.contexts import Outcome, ProcessingContext
    from missive.processor import Processor

M = TypeVar("M", bound=Message)


class TestAdapter(Adapter[M], Generic[M]):
    """An adapter that takes messages from the test and records acks and nacks.

    Get one from :meth:`Processor.test_client`.  Use it in a ``with`` block,
    or assign it and call :meth:`send`: the processing context, and so the
    ``before_processing`` hooks, start at the first message, and
    :meth:`close` ends it.

    Exceptions propagate from :meth:`send` as they would to a real adapter,
    which is how a test sees that a processor without a DLQ failed.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, processor: Processor[M]) -> None:
        super().__init__(processor)
        #: Messages acked, in order.
        self.acked: list[M] = []
        #: Messages nacked, in order.
        self.nacked: list[M] = []
        self._context: AbstractContextManager[ProcessingContext[M]] | None = None
        self._processing_ctx: ProcessingContext[M] | None = None

    def __enter__(self) -> TestAdapter[M]:
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def processing_ctx(self) -> ProcessingContext[M]:
        """The processing context, started if it was not yet."""
        return self._start()

    def send(self, message: M) -> Outcome:
        """Process ``message`` as if the transport had delivered it.

        :returns: what became of it.
        """
        ctx = self._processing_ctx
        if ctx is None:
            ctx = self._start()
        return ctx.handle(message)

    def ack(self, message: M) -> None:
        self.acked.append(message)

    def nack(self, message: M) -> None:
        self.nacked.append(message)

    def close(self) -> None:
        """End the processing context, running ``after_processing`` hooks."""
        context, self._context = self._context, None
        self._processing_ctx = None
        if context is not None:
            context.__exit__(None, None, None)

    def _start(self) -> ProcessingContext[M]:
        if self._processing_ctx is None:
            context = self.processor.context(_message_class(), self)
            self._processing_ctx = context.__enter__()
            self._context = context
        return self._processing_ctx


def _message_class() -> Any:
    # The test client receives ready-made messages of any class.
    return Message
